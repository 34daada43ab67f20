//! A host for unit tests: no Envoy, no Wasm. [`Harness`] loads a filter's configuration the way
//! both backends do and drives whole requests through it (body chunks, trailers, callouts and
//! the upstream's answer, with Envoy's rules for stopping and buffering); [`MockHost`] is the
//! host it uses, and can be used directly to call one callback.

mod harness;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::Error;
use crate::filter::Metrics;
use crate::host::{
    Body, CallId, Counter, GrpcCall, Headers, Histogram, Host, HttpCall, LogLevel, MetadataSource,
    Property, TimerId,
};
use crate::shared::SharedStore;

pub use harness::{Exchange, Harness, Request, Upstream};

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

/// A callout the filter started, as the mock recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// Its id.
    pub id: CallId,
    /// The cluster.
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, then the other headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The timeout.
    pub timeout: Duration,
    /// Whether the harness has delivered its answer.
    pub answered: bool,
    /// A gRPC call: `:path` is `/<service>/<method>` and the body its message.
    pub grpc: bool,
}

impl RecordedCall {
    /// A header of the call.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::host::value_of(&self.headers, name)
    }
}

/// An in-memory host.
#[derive(Debug, Default)]
pub struct MockHost {
    /// Request headers, in order (names lower case).
    pub request_headers: Vec<(String, String)>,
    /// Response headers, in order.
    pub response_headers: Vec<(String, String)>,
    /// Request trailers.
    pub request_trailers: Vec<(String, String)>,
    /// Response trailers.
    pub response_trailers: Vec<(String, String)>,
    /// The request body the filter holds: chunks it stopped on, and the current one.
    pub request_body: Vec<u8>,
    /// The response body the filter holds.
    pub response_body: Vec<u8>,
    /// Clusters a callout may call (empty: any). A callout to another one fails as Envoy
    /// fails it: no such cluster.
    pub clusters: Vec<String>,
    /// Callouts started, in order.
    pub calls: Vec<RecordedCall>,
    /// Timers set, in order: id, delay, and whether the harness fired it.
    pub timers: Vec<(TimerId, Duration, bool)>,
    /// Properties the proxy knows.
    pub properties: BTreeMap<Property, String>,
    /// Metadata by (source, namespace, key).
    pub metadata: BTreeMap<(MetadataSource, String, String), String>,
    /// Filter state by key.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// Shared data.
    pub shared: SharedStore,
    /// Behave as a `.wasm` build where the targets differ (`set_metadata` is refused).
    pub as_wasm: bool,
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
            Headers::RequestTrailers => &mut self.request_trailers,
            Headers::ResponseTrailers => &mut self.response_trailers,
        }
    }

    fn map_ref(&self, map: Headers) -> &[(String, String)] {
        match map {
            Headers::Request => &self.request_headers,
            Headers::Response => &self.response_headers,
            Headers::RequestTrailers => &self.request_trailers,
            Headers::ResponseTrailers => &self.response_trailers,
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
        self.header_values(map, name).into_iter().next()
    }

    fn header_values(&self, map: Headers, name: &str) -> Vec<String> {
        self.map_ref(map)
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
            .collect()
    }

    fn headers(&self, map: Headers) -> Vec<(String, String)> {
        self.map_ref(map).to_vec()
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

    fn set_body(&mut self, which: Body, bytes: &[u8]) -> Result<(), Error> {
        let body = match which {
            Body::Request => &mut self.request_body,
            Body::Response => &mut self.response_body,
        };
        *body = bytes.to_vec();
        Ok(())
    }

    fn http_call(&mut self, call: &HttpCall<'_>) -> Result<CallId, Error> {
        if !self.clusters.is_empty() && !self.clusters.iter().any(|c| c == call.cluster) {
            return Err(Error::host(
                "http_call",
                format!("{}: no such cluster", call.cluster),
            ));
        }
        let id = CallId(self.calls.len() as u64 + 1);
        let pseudo = [
            (":method", call.method),
            (":path", call.path),
            (":authority", call.authority),
        ];
        self.calls.push(RecordedCall {
            id,
            cluster: call.cluster.into(),
            headers: pseudo
                .iter()
                .chain(call.headers.iter())
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            body: call.body.to_vec(),
            timeout: call.timeout,
            answered: false,
            grpc: false,
        });
        Ok(id)
    }

    fn grpc_call(&mut self, call: &GrpcCall<'_>) -> Result<CallId, Error> {
        let path = format!("/{}/{}", call.service, call.method);
        let http = HttpCall {
            cluster: call.cluster,
            method: "POST",
            path: &path,
            authority: call.cluster,
            headers: vec![("content-type", "application/grpc")],
            body: call.message,
            timeout: call.timeout,
        };
        let id = self.http_call(&http)?;
        if let Some(recorded) = self.calls.last_mut() {
            recorded.grpc = true;
        }
        Ok(id)
    }

    fn set_timer(&mut self, delay: Duration) -> Result<TimerId, Error> {
        let id = TimerId(self.timers.len() as u64 + 1);
        self.timers.push((id, delay, false));
        Ok(id)
    }

    fn property(&self, property: Property) -> Option<String> {
        self.properties.get(&property).cloned()
    }

    fn metadata(&self, source: MetadataSource, namespace: &str, key: &str) -> Option<String> {
        let at = (source, namespace.to_string(), key.to_string());
        self.metadata.get(&at).cloned()
    }

    fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        if self.as_wasm {
            return Err(Error::SET_METADATA_ON_WASM);
        }
        let at = (MetadataSource::Dynamic, namespace.into(), key.into());
        self.metadata.insert(at, value.into());
        Ok(())
    }

    fn filter_state(&self, key: &str) -> Option<Vec<u8>> {
        self.filter_state.get(key).cloned()
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.filter_state.insert(key.into(), value.to_vec());
        Ok(())
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.get(key)
    }

    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error> {
        self.shared.set(key, value, cas)
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

#[cfg(test)]
mod tests;
