//! A client of the admin API, for the `meshplug` CLI: rollout status and controls.

use meshplug_core::nodes::FilterOnNode;
use serde_json::Value;

use crate::Error;
use crate::tls::ClientTls;

/// Talks to one control plane's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client of the admin API at `base` (e.g. `http://127.0.0.1:18080`, or `https://…`
    /// with `tls`).
    pub fn new(base: &str, token: Option<String>, tls: Option<&ClientTls>) -> Result<Self, Error> {
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
        if let Some(tls) = tls {
            http = tls.reqwest(http)?;
        }
        let http = http
            .build()
            .map_err(|e| Error::Admin(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// `GET` a JSON document.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Admin(format!("GET {url}: {e}")))?;
        read(response, &url).await
    }

    /// `POST /api/v1/rollouts/{plugin}/{action}`; the server's message. A replica that does
    /// not lead answers 421 with the leader's admin API: the control is sent there, once.
    pub async fn control(&self, plugin: &str, action: &str, body: Value) -> Result<String, Error> {
        let path = format!("/api/v1/rollouts/{plugin}/{action}");
        let url = format!("{}{path}", self.base);
        let response = self.post(&url, &body).await?;
        if response.status() == reqwest::StatusCode::MISDIRECTED_REQUEST {
            let status = response.status();
            let refusal: Value = response.json().await.unwrap_or_default();
            let Some(leader) = refusal["leader"].as_str() else {
                let message = refusal["error"].as_str().unwrap_or("no message");
                return Err(Error::Admin(format!("{url}: {status}: {message}")));
            };
            let url = format!("{}{path}", leader.trim_end_matches('/'));
            let reply = read(self.post(&url, &body).await?, &url).await?;
            return Ok(reply["message"].as_str().unwrap_or_default().to_string());
        }
        let reply = read(response, &url).await?;
        Ok(reply["message"].as_str().unwrap_or_default().to_string())
    }

    async fn post(&self, url: &str, body: &Value) -> Result<reqwest::Response, Error> {
        let mut request = self.http.post(url).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .map_err(|e| Error::Admin(format!("POST {url}: {e}")))
    }
}

/// The replicas (`/api/v1/replicas`) as a terminal table: one line per replica, with the
/// leader and its term; empty when the control plane runs alone.
pub fn replicas_table(replicas: &Value) -> String {
    if replicas["enabled"] != true {
        return String::new();
    }
    let leader = replicas["leader"]["id"].as_str();
    let term = replicas["leader"]["term"].as_i64().unwrap_or(0);
    let mut out = match leader {
        Some(id) => format!("leader: {id} (term {term})\n"),
        None => "leader: none (an election is under way)\n".to_string(),
    };
    out.push_str(&format!(
        "{:<20} {:<8} {:<28} {:<6} {}\n",
        "REPLICA", "ROLE", "ADMIN", "NODES", "HELD"
    ));
    for (id, member) in replicas["members"].as_object().into_iter().flatten() {
        let held: Vec<&str> = replicas["nodes"][id]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let role = if Some(id.as_str()) == leader {
            "leader"
        } else {
            "follower"
        };
        let mine = if replicas["me"] == id.as_str() {
            " (this one)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:<28} {:<6} {}{mine}\n",
            id,
            role,
            member["admin"].as_str().unwrap_or("-"),
            held.len(),
            held.join(",")
        ));
    }
    out.push('\n');
    out
}

async fn read(response: reqwest::Response, url: &str) -> Result<Value, Error> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| Error::Admin(format!("{url}: {status}: unreadable answer: {e}")))?;
    if status.is_success() {
        Ok(body)
    } else {
        let message = body["error"].as_str().unwrap_or("no message").to_string();
        Err(Error::Admin(format!("{url}: {status}: {message}")))
    }
}

/// The rollouts as a terminal table: one line per filter.
pub fn rollout_table(list: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<14} {:<14} {:<10} {:<12} {:>7} {:>11}\n",
        "FILTER", "LAST GOOD", "ROLLING OUT", "STAGE", "STATE", "CANARY", "QUARANTINED"
    );
    for plugin in list["plugins"].as_array().into_iter().flatten() {
        let rollout = &plugin["rollout"];
        let stage = match (&rollout["stage"]["stage"], &rollout["stage"]["index"]) {
            (Value::String(s), Value::Number(i)) => format!("{s} {i}"),
            (Value::String(s), _) => s.clone(),
            _ => "-".into(),
        };
        let state = if rollout.is_null() {
            "stable".to_string()
        } else if rollout["paused"].is_null() {
            "progressing".to_string()
        } else {
            "paused".to_string()
        };
        out.push_str(&format!(
            "{:<16} {:<14} {:<14} {:<10} {:<12} {:>7} {:>11}\n",
            plugin["name"].as_str().unwrap_or("?"),
            short(&plugin["last_good"]["sha256"]),
            short(&rollout["to"]["sha256"]),
            stage,
            state,
            rollout["canary"].as_array().map_or(0, Vec::len),
            plugin["quarantine"].as_object().map_or(0, |q| q.len()),
        ));
        if let Some(paused) = rollout["paused"]["reason"].as_str() {
            out.push_str(&format!("  paused: {paused}\n"));
        }
        if let Some(last) = plugin["recent_decisions"].as_array().and_then(|d| d.last()) {
            out.push_str(&format!(
                "  last decision: {} ({})\n",
                last["action"].as_str().unwrap_or("?"),
                last["reason"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

/// Where one node stands with one filter, as `meshplug status` says it (after
/// `istioctl proxy-status`): `SYNCED` (ACKed what it should run), `FAILING` (ACKed it, and a
/// look found its traffic clearly worse than before, or load errors), `NACKED` (refused it),
/// `FETCH FAILED` (its agent could not fetch it, and keeps trying), `FETCHING` (sent to a
/// proxy behind an agent, no answer yet), `SENT` (sent, no answer yet), `NOT SENT` (not sent
/// yet), or `-` (nothing desired). `delivery` is the node's (`local` or `agent`).
pub fn filter_state(filter: &Value, delivery: &str) -> &'static str {
    let desired = filter["desired"].as_str();
    let version_of = |key: &str| filter[key].as_str();
    match desired {
        None => "-",
        Some(d) if version_of("acked") == Some(d) && filter["failing"]["version"] == d => "FAILING",
        Some(d) if version_of("acked") == Some(d) => "SYNCED",
        Some(d) if filter["last_nack"]["version"].as_str() == Some(d) => "NACKED",
        Some(d) if filter["last_fetch_failure"]["version"].as_str() == Some(d) => "FETCH FAILED",
        Some(d) if version_of("sent") == Some(d) && delivery == "agent" => "FETCHING",
        Some(d) if version_of("sent") == Some(d) => "SENT",
        Some(_) => "NOT SENT",
    }
}

/// A version or sha cut to 12 characters, or `-`.
fn short(value: &Value) -> String {
    value
        .as_str()
        .map_or("-".to_string(), |s| s.chars().take(12).collect())
}

/// The fleet (`/api/v1/nodes`) as a terminal table: one line per node and filter.
pub fn status_table(nodes: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<12} {:<8} {:<6} {:<16} {:<13} {:<13} {:<8} {}\n",
        "NODE", "CLUSTER", "ENVOY", "UP", "FILTER", "DESIRED", "ACKED", "APPLIED", "STATUS"
    );
    for node in nodes["nodes"].as_array().into_iter().flatten() {
        let filters = node["filters"].as_object().cloned().unwrap_or_default();
        let up = if node["connected"] == true {
            "yes"
        } else {
            "no"
        };
        let row = |filter: &str, desired: String, acked: String, applied: &str, state: &str| {
            format!(
                "{:<20} {:<12} {:<8} {:<6} {:<16} {:<13} {:<13} {:<8} {}\n",
                node["id"].as_str().unwrap_or("?"),
                node["cluster"].as_str().unwrap_or("-"),
                node["envoy_version"].as_str().unwrap_or("-"),
                up,
                filter,
                desired,
                acked,
                applied,
                state
            )
        };
        if filters.is_empty() {
            out.push_str(&row("-", "-".into(), "-".into(), "-", "-"));
        }
        for (name, filter) in &filters {
            let state = filter_state(filter, node["delivery"].as_str().unwrap_or("local"));
            // The node model's own rule for "applied" and "failing", on the API's document.
            let parsed: Option<FilterOnNode> = serde_json::from_value(filter.clone()).ok();
            let applied = parsed.as_ref().map_or("-", FilterOnNode::applied_state);
            let failing = parsed.as_ref().and_then(FilterOnNode::failing_now);
            out.push_str(&row(
                name,
                short(&filter["desired"]),
                short(&filter["acked"]),
                applied,
                state,
            ));
            if let Some(failing) = failing {
                out.push_str(&format!("  failing: {}\n", failing.reason));
            }
            if let Some(error) = filter["last_nack"]["error"].as_str() {
                out.push_str(&format!("  last NACK: {error}\n"));
            }
            if let Some(error) = filter["last_fetch_failure"]["error"].as_str() {
                out.push_str(&format!("  fetch failed: {error}\n"));
            }
        }
    }
    out
}

/// The manifest files (`/api/v1/manifests`) as a terminal table: one line per file, and the
/// refusal under a refused one.
pub fn manifests_table(manifests: &Value) -> String {
    if manifests["enabled"] == false {
        return "manifests do not govern this control plane (start it with --plugins DIR)\n".into();
    }
    let mut out = format!("{:<32} {:<9} {:<20} {}\n", "FILE", "KIND", "NAME", "STATUS");
    for file in manifests["files"].as_array().into_iter().flatten() {
        let in_force = &file["in_force"];
        let status = match (in_force.is_array(), file["error"].is_object()) {
            (true, false) => "in force",
            (true, true) => "REFUSED (previous version in force)",
            (false, _) => "REFUSED",
        };
        out.push_str(&format!(
            "{:<32} {:<9} {:<20} {}\n",
            file["file"].as_str().unwrap_or("?"),
            in_force[0].as_str().unwrap_or("-"),
            in_force[1].as_str().unwrap_or("-"),
            status
        ));
        if let Some(error) = file["error"].as_object() {
            let line = error
                .get("line")
                .and_then(Value::as_u64)
                .map_or(String::new(), |l| format!(":{l}"));
            let field = error.get("field").and_then(Value::as_str).unwrap_or("");
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!(
                "  {}{line}: {field}: {message}\n",
                file["file"].as_str().unwrap_or("?")
            ));
        }
    }
    out
}

/// Signer key ids, comma-separated; `-` for none.
fn signers(ids: &Value) -> String {
    let ids: Vec<&str> = ids
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match ids.is_empty() {
        true => "-".into(),
        false => ids.join(","),
    }
}

/// The plugins (`/api/v1/plugins`) as a terminal table: one line per filter.
pub fn plugins_table(plugins: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<7} {:<13} {:<17} {:<13} {:>9}  {}\n",
        "PLUGIN", "KIND", "SHA", "SIGNER", "CONFIG", "PUBLISHES", "LAST REJECTION"
    );
    for plugin in plugins["plugins"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<7} {:<13} {:<17} {:<13} {:>9}  {}\n",
            plugin["name"].as_str().unwrap_or("?"),
            plugin["artifact"]["kind"].as_str().unwrap_or("-"),
            short(&plugin["artifact"]["sha256"]),
            &signers(&plugin["artifact"]["signers"]),
            short(&plugin["config_sha256"]),
            plugin["publishes"].as_u64().unwrap_or(0),
            plugin["last_rejection"]["reason"].as_str().unwrap_or("-"),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
