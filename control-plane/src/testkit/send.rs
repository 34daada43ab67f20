//! Requests through the session's Envoy: one with its outcome (status, headers, body, and the
//! request as the fake upstream got it), Envoy's counters, and a load of many.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshplug_preflight::{FixtureRequest, Outcome};
use serde_json::Value as Json;

use super::session::Session;

impl Session {
    /// The address of listener `name`, or of the first listener.
    pub fn listener(&self, name: Option<&str>) -> Result<SocketAddr, String> {
        let found = match name {
            Some(name) => self.listeners.iter().find(|(n, _)| n == name),
            None => self.listeners.first(),
        };
        found.map(|(_, addr)| *addr).ok_or_else(|| {
            let known: Vec<&str> = self.listeners.iter().map(|(n, _)| n.as_str()).collect();
            format!("no listener {:?}; Envoy has {known:?}", name.unwrap_or("-"))
        })
    }

    /// Sends `request` to `addr`; what came back, and what the upstream got.
    pub async fn send(
        &self,
        addr: SocketAddr,
        http2: bool,
        request: &FixtureRequest,
    ) -> Result<Outcome, String> {
        for fake in self.fakes.values() {
            fake.forget_last();
        }
        // One kept-alive connection per protocol: a case's requests reach the same worker,
        // as a client's do (a Wasm filter's state is per worker).
        let client = &self.clients[usize::from(http2)];
        let answer = build(client, addr, request)?
            .send()
            .await
            .map_err(|e| format!("sending {} {}: {e}", request.method, request.path))?;
        let status = answer.status().as_u16();
        let headers = header_map(answer.headers());
        let body = answer
            .text()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        let upstream = self.fakes.values().find_map(|f| f.last());
        Ok(Outcome {
            status,
            local_reply: upstream.is_none(),
            headers,
            body,
            upstream_headers: upstream.map(|seen| seen.headers),
        })
    }

    /// The texts of `wanted` that no line Envoy logged after byte `from` of its log
    /// contains, waiting up to 3 s for its log to be flushed.
    pub async fn missing_log_lines(&self, from: u64, wanted: &[String]) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let text = std::fs::read(&self.envoy_log)
                .map(|bytes| {
                    let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
                    String::from_utf8_lossy(&bytes[start..]).into_owned()
                })
                .unwrap_or_default();
            let missing: Vec<String> = wanted
                .iter()
                .filter(|needle| !text.lines().any(|line| line.contains(needle.as_str())))
                .map(|needle| format!("log: no line Envoy logged contains {needle:?}"))
                .collect();
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Envoy's counters and gauges, by name.
    pub async fn stats(&self) -> Result<BTreeMap<String, i64>, String> {
        let url = format!("{}/stats?format=json", self.envoy_admin);
        let body: Json = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("reading Envoy's stats: {e}"))?
            .json()
            .await
            .map_err(|e| format!("reading Envoy's stats: {e}"))?;
        Ok(body["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_i64()?)))
            .collect())
    }
}

/// Headers as the fixture format holds them: lower-case names (a name given twice keeps its
/// last value), values read lossily as UTF-8.
pub(super) fn header_map(headers: &axum::http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect()
}

/// A client with one connection per host, HTTP/2 with prior knowledge when asked.
pub(super) fn client(http2: bool) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(std::time::Duration::from_secs(30));
    let builder = if http2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    builder.build().map_err(|e| e.to_string())
}

pub(super) fn build(
    client: &reqwest::Client,
    addr: SocketAddr,
    request: &FixtureRequest,
) -> Result<reqwest::RequestBuilder, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a method", request.method))?;
    let mut builder = client.request(method, format!("http://{addr}{}", request.path));
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    Ok(builder)
}

/// The moves of `expected` counters that did not happen between `before` and `after`.
pub(super) fn stat_diffs(
    expected: &BTreeMap<String, i64>,
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(name, want)| {
            let Some(now) = after.get(name) else {
                return Some(format!("stat {name}: Envoy has no such stat"));
            };
            let moved = now - before.get(name).copied().unwrap_or(0);
            (moved != *want).then(|| format!("stat {name}: moved by {moved}, expected {want}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_deltas_are_compared_by_name() {
        let expected = BTreeMap::from([
            ("a".to_string(), 1),
            ("b".to_string(), 0),
            ("c".to_string(), 2),
        ]);
        let before = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 1)]);
        let after = BTreeMap::from([("a".to_string(), 6), ("b".to_string(), 1)]);
        assert_eq!(
            stat_diffs(&expected, &before, &after),
            ["stat c: Envoy has no such stat"]
        );
        let after = BTreeMap::from([
            ("a".to_string(), 7),
            ("b".to_string(), 1),
            ("c".to_string(), 2),
        ]);
        assert_eq!(
            stat_diffs(&expected, &before, &after),
            ["stat a: moved by 2, expected 1"]
        );
    }
}
