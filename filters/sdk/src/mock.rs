//! A host for unit tests: no Envoy, no Wasm. [`Harness`] loads a filter's configuration the way
//! both backends do and drives whole requests through it; [`MockHost`] is the host it uses, and
//! can be used directly to call one callback.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::filter::{Action, FilterConfig, HttpFilter, Loaded, LocalReply, Metrics, load};
use crate::host::{Body, Counter, Headers, Histogram, Host, LogLevel};

/// Metrics defined on the mock: ids are indexes into `names`.
#[derive(Debug, Default)]
pub struct MockMetrics {
    /// Defined metric names, by id.
    pub names: Vec<String>,
}

impl Metrics for MockMetrics {
    fn counter(&mut self, name: &str) -> Result<Counter, Error> {
        self.names.push(name.to_string());
        Ok(Counter(self.names.len() - 1))
    }

    fn histogram(&mut self, name: &str) -> Result<Histogram, Error> {
        self.names.push(name.to_string());
        Ok(Histogram(self.names.len() - 1))
    }
}

/// An in-memory host.
#[derive(Debug, Default)]
pub struct MockHost {
    /// Request headers, in order (names lower case).
    pub request_headers: Vec<(String, String)>,
    /// Response headers, in order.
    pub response_headers: Vec<(String, String)>,
    /// The request body chunk the current callback sees.
    pub request_body: Vec<u8>,
    /// The response body chunk the current callback sees.
    pub response_body: Vec<u8>,
    /// Log lines.
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    /// Metric names by id (from [`MockMetrics`]).
    pub metric_names: Vec<String>,
    /// Counter totals by name.
    pub counters: BTreeMap<String, u64>,
    /// Recorded histogram values by name.
    pub histograms: BTreeMap<String, Vec<u64>>,
    /// The clock.
    pub now_ms: u64,
}

impl MockHost {
    fn map(&mut self, map: Headers) -> &mut Vec<(String, String)> {
        match map {
            Headers::Request => &mut self.request_headers,
            Headers::Response => &mut self.response_headers,
        }
    }

    fn metric_name(&self, id: usize) -> String {
        self.metric_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("undefined-metric-{id}"))
    }
}

impl Host for MockHost {
    fn header(&self, map: Headers, name: &str) -> Option<String> {
        let headers = match map {
            Headers::Request => &self.request_headers,
            Headers::Response => &self.response_headers,
        };
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    fn set_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        self.remove_header(map, name)?;
        self.add_header(map, name, value)
    }

    fn add_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        self.map(map)
            .push((name.to_ascii_lowercase(), value.to_string()));
        Ok(())
    }

    fn remove_header(&mut self, map: Headers, name: &str) -> Result<(), Error> {
        self.map(map)
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn body(&self, which: Body) -> Vec<u8> {
        match which {
            Body::Request => self.request_body.clone(),
            Body::Response => self.response_body.clone(),
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn increment(&mut self, counter: Counter, by: u64) {
        let name = self.metric_name(counter.0);
        *self.counters.entry(name).or_default() += by;
    }

    fn record(&mut self, histogram: Histogram, value: u64) {
        let name = self.metric_name(histogram.0);
        self.histograms.entry(name).or_default().push(value);
    }

    fn now_millis(&self) -> u64 {
        self.now_ms
    }
}

/// A request for [`Harness::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Headers, including `:method`, `:path` and `:authority`.
    pub headers: Vec<(String, String)>,
    /// Body (may be empty).
    pub body: Vec<u8>,
}

impl Request {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), path.into()),
                (":authority".into(), "test".into()),
            ],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// What came of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The filter's local reply, if it answered.
    pub reply: Option<LocalReply>,
    /// The request headers the upstream saw, if the request got there.
    pub upstream_headers: Option<Vec<(String, String)>>,
    /// The response headers the client saw (from the upstream, after the filter).
    pub response_headers: Vec<(String, String)>,
}

impl Exchange {
    /// The status the client got.
    pub fn status(&self) -> u16 {
        self.reply.as_ref().map_or_else(
            || {
                lookup(&self.response_headers, ":status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            },
            |r| r.status,
        )
    }

    /// A response header the client saw (local reply or upstream response).
    pub fn response_header(&self, name: &str) -> Option<String> {
        match &self.reply {
            Some(reply) => lookup(&reply.headers, name),
            None => lookup(&self.response_headers, name),
        }
    }

    /// A request header the upstream saw.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_headers.as_ref().and_then(|h| lookup(h, name))
    }
}

fn lookup(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.clone())
}

/// A filter loaded on the mock host, with an upstream that answers 200.
pub struct Harness<F: HttpFilter> {
    loaded: Loaded<F::Config>,
    /// The host state kept across requests (counters, logs, clock).
    pub host: MockHost,
}

impl<F: HttpFilter> std::fmt::Debug for Harness<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("filter", &<F::Config as FilterConfig>::NAME)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl<F: HttpFilter> Harness<F> {
    /// Loads `config_json` as both backends would; the error is what Envoy would be told.
    pub fn new(config_json: &str) -> Result<Self, Error> {
        let mut metrics = MockMetrics::default();
        let plugin = <F::Config as FilterConfig>::NAME;
        let loaded = load::<F::Config>(plugin, config_json.as_bytes(), &mut metrics)?;
        let host = MockHost {
            metric_names: metrics.names,
            ..MockHost::default()
        };
        Ok(Self { loaded, host })
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Arc<F::Config> {
        &self.loaded.config
    }

    /// Moves the clock forward.
    pub fn advance_ms(&mut self, ms: u64) {
        self.host.now_ms += ms;
    }

    /// Sends one request through a new filter instance; the upstream answers 200 with `body`.
    pub fn send(&mut self, request: &Request) -> Exchange {
        let mut filter = F::new(&self.loaded.config);
        let host = &mut self.host;
        host.request_headers = request.headers.clone();
        host.response_headers.clear();
        if let Some(heartbeat) = self.loaded.heartbeat {
            host.increment(heartbeat, 1);
        }
        let no_body = request.body.is_empty();
        let mut outcome = filter.on_request_headers(host, no_body);
        if !no_body && !matches!(outcome, Action::Reply(_)) {
            host.request_body = request.body.clone();
            outcome = filter.on_request_body(host, true);
        }
        if let Action::Reply(reply) = outcome {
            filter.on_complete(host);
            return Exchange {
                reply: Some(reply),
                upstream_headers: None,
                response_headers: Vec::new(),
            };
        }
        let upstream_headers = Some(host.request_headers.clone());
        host.response_headers = vec![(":status".into(), "200".into())];
        let reply = match filter.on_response_headers(host, false) {
            Action::Reply(reply) => Some(reply),
            Action::Continue | Action::Stop => None,
        };
        filter.on_complete(host);
        Exchange {
            reply,
            upstream_headers,
            response_headers: host.response_headers.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
