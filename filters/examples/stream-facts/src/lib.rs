//! Stream facts: every SDK capability the other examples do not show, on one stream, each
//! visible in what the upstream or the client receives.
//!
//! Request, towards the upstream:
//! - `x-facts-source`: the client's address (property `source.address`);
//! - `x-facts-protocol`: `request.protocol`;
//! - `x-facts-values`: every value of request header `x-multi`, joined with `,`;
//! - `x-facts-pairs`: how many `x-multi` pairs the whole header map holds;
//! - with request header `x-facts-shout`, the request body upper-cased (held whole first);
//! - `x-facts-greeting`: the route's per-route setting, route metadata
//!   `filter_metadata["meshplug.stream-facts"]["greeting"]`, when the route has one;
//! - trailer `x-facts-checked`: the value of request trailer `x-checksum`, when there is one;
//! - `x-facts-waited`: with request header `x-facts-delay-ms: <n>` (at most 10000) the filter
//!   holds the request on a timer for `n` ms, then says how long it waited by the proxy's clock;
//! - `x-facts-grpc-answer: <status>/<bytes>`: with request header `x-facts-grpc: <cluster>` (one
//!   of the configured `grpc_clusters`) the filter holds the request on a unary gRPC call,
//!   `envoy.service.auth.v3.Authorization/Check` with an empty request, and reports the gRPC
//!   status and the size of the answer.
//!
//! Response, towards the client:
//! - `x-facts-count`: this request's number, counted in shared data across streams and workers;
//! - `x-facts-state`: what the filter stored in filter state on the way in, read back;
//! - `x-facts-metadata`: what it stored in dynamic metadata, read back, or `unsupported` on
//!   `.wasm`, where Envoy's proxy-wasm host cannot write dynamic metadata;
//! - `x-facts-trailer`: the request trailer `x-checksum` as seen in the request trailers hook;
//! - trailer `x-facts-served: stream-facts`, when the upstream sends trailers.

use std::sync::Arc;
use std::time::Duration;

use meshplug_sdk::{
    Action, Body, CallId, Error, FilterConfig, GrpcCall, GrpcResponse, Headers, Host, HttpFilter,
    LogLevel, MetadataSource, Metrics, Property, TimerId,
};
use serde::Deserialize;

/// The settings (JSON, optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Clusters a request may ask a gRPC call to (default: `grpc`).
    #[serde(default = "default_grpc_clusters")]
    pub grpc_clusters: Vec<String>,
}

fn default_grpc_clusters() -> Vec<String> {
    vec!["grpc".into()]
}

/// The configuration.
#[derive(Debug)]
pub struct Config {
    grpc_clusters: Vec<String>,
}

impl FilterConfig for Config {
    const NAME: &'static str = "stream-facts";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            grpc_clusters: settings.grpc_clusters,
        })
    }
}

/// The shared-data key counting requests.
pub const COUNT_KEY: &str = "stream-facts.requests";
/// The filter-state key.
pub const STATE_KEY: &str = "meshplug.stream_facts";
/// The dynamic-metadata namespace (and the route metadata one).
pub const NAMESPACE: &str = "meshplug.stream-facts";

/// The filter for one request.
#[derive(Debug)]
pub struct StreamFacts {
    config: Arc<Config>,
    count: u64,
    metadata: Option<String>,
    trailer: Option<String>,
    /// When the request was put on hold, by the proxy's clock.
    held_at: Option<u64>,
    /// Whether the request asked for its body upper-cased (read with its headers: a `.wasm`
    /// cannot read request headers in a body callback).
    shout: bool,
}

/// Adds one to the shared counter, retrying when another stream got there first.
pub fn count_request<H: Host>(host: &mut H) -> Result<u64, Error> {
    for _ in 0..16 {
        let (current, version) = host.shared_data(COUNT_KEY).unwrap_or_default();
        let current: u64 = std::str::from_utf8(&current)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let next = current + 1;
        match host.set_shared_data(COUNT_KEY, next.to_string().as_bytes(), Some(version)) {
            Ok(()) => return Ok(next),
            Err(Error::CasMismatch { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(Error::host("set_shared_data", "too much contention"))
}

impl StreamFacts {
    fn tag_request<H: Host>(&self, host: &mut H) {
        let facts = [
            ("x-facts-source", host.property(Property::SourceAddress)),
            ("x-facts-protocol", host.property(Property::RequestProtocol)),
            (
                "x-facts-greeting",
                host.metadata(MetadataSource::Route, NAMESPACE, "greeting"),
            ),
        ];
        for (name, value) in facts {
            if let Some(value) = value {
                let _ = host.set_header(Headers::Request, name, &value);
            }
        }
        let values = host.header_values(Headers::Request, "x-multi");
        if !values.is_empty() {
            let _ = host.set_header(Headers::Request, "x-facts-values", &values.join(","));
            let headers = host.headers(Headers::Request);
            let pairs = headers.iter().filter(|(name, _)| name == "x-multi").count();
            let _ = host.set_header(Headers::Request, "x-facts-pairs", &pairs.to_string());
        }
    }
}

impl StreamFacts {
    /// Holds the request on a gRPC call when it asks for one to a configured cluster.
    fn call<H: Host>(&mut self, host: &mut H) -> Option<Action> {
        let cluster = host.header(Headers::Request, "x-facts-grpc")?;
        if !self.config.grpc_clusters.contains(&cluster) {
            return Some(Action::Reply(meshplug_sdk::LocalReply::text(
                400,
                "x-facts-grpc names no configured cluster\n",
                "stream_facts_bad_cluster",
            )));
        }
        let call = GrpcCall {
            cluster: &cluster,
            service: "envoy.service.auth.v3.Authorization",
            method: "Check",
            message: &[],
            timeout: Duration::from_secs(5),
        };
        Some(match host.grpc_call(&call) {
            Ok(_) => Action::Stop,
            Err(error) => {
                let _ =
                    host.set_header(Headers::Request, "x-facts-grpc-answer", &error.to_string());
                Action::Continue
            }
        })
    }

    /// Holds the request on a timer when it asks for a delay.
    fn hold<H: Host>(&mut self, host: &mut H) -> Action {
        if let Some(action) = self.call(host) {
            return action;
        }
        let delay = host.header(Headers::Request, "x-facts-delay-ms");
        let Some(ms) = delay
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|ms| *ms <= 10_000)
        else {
            return Action::Continue;
        };
        match host.set_timer(Duration::from_millis(ms)) {
            Ok(_) => {
                self.held_at = Some(host.now_millis());
                Action::Stop
            }
            Err(error) => {
                host.log(LogLevel::Warn, &format!("no timer: {error}"));
                Action::Continue
            }
        }
    }
}

impl HttpFilter for StreamFacts {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self {
            config: Arc::clone(config),
            count: 0,
            metadata: None,
            trailer: None,
            held_at: None,
            shout: false,
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        self.shout = host.header(Headers::Request, "x-facts-shout").is_some();
        self.tag_request(host);
        self.count = count_request(host).unwrap_or_else(|error| {
            host.log(LogLevel::Warn, &error.to_string());
            0
        });
        let _ = host.set_filter_state(STATE_KEY, b"seen");
        self.metadata = match host.set_metadata(NAMESPACE, "seen", "yes") {
            Ok(()) => host.metadata(MetadataSource::Dynamic, NAMESPACE, "seen"),
            Err(Error::Unsupported { .. }) => Some("unsupported".into()),
            Err(error) => Some(error.to_string()),
        };
        self.hold(host)
    }

    fn on_grpc_call_response<H: Host>(
        &mut self,
        host: &mut H,
        _call: CallId,
        response: GrpcResponse,
    ) -> Action {
        let answer = format!("{}/{}", response.status, response.body.len());
        let _ = host.set_header(Headers::Request, "x-facts-grpc-answer", &answer);
        Action::Continue
    }

    fn on_timer<H: Host>(&mut self, host: &mut H, _timer: TimerId) -> Action {
        let waited = self
            .held_at
            .map_or(0, |at| host.now_millis().saturating_sub(at));
        let _ = host.set_header(Headers::Request, "x-facts-waited", &waited.to_string());
        Action::Continue
    }

    fn on_request_body<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Action {
        if !self.shout {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Stop;
        }
        let body = host.body(Body::Request).to_ascii_uppercase();
        let _ = host.set_body(Body::Request, &body);
        Action::Continue
    }

    fn on_request_trailers<H: Host>(&mut self, host: &mut H) -> Action {
        self.trailer = host.header(Headers::RequestTrailers, "x-checksum");
        if let Some(checksum) = &self.trailer {
            let _ = host.set_header(Headers::RequestTrailers, "x-facts-checked", checksum);
        }
        Action::Continue
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let state = host.filter_state(STATE_KEY);
        let state = state.map(|s| String::from_utf8_lossy(&s).into_owned());
        let facts = [
            ("x-facts-count", Some(self.count.to_string())),
            ("x-facts-state", state),
            ("x-facts-metadata", self.metadata.clone()),
            ("x-facts-trailer", self.trailer.clone()),
        ];
        for (name, value) in facts {
            if let Some(value) = value {
                let _ = host.set_header(Headers::Response, name, &value);
            }
        }
        Action::Continue
    }

    fn on_response_trailers<H: Host>(&mut self, host: &mut H) -> Action {
        let _ = host.set_header(Headers::ResponseTrailers, "x-facts-served", "stream-facts");
        Action::Continue
    }
}

meshplug_sdk::export_filter!(StreamFacts);

#[cfg(test)]
mod tests;
