//! [`Host`] over proxy-wasm host calls.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use super::abi::{self, CAS_MISMATCH, Status};
use super::{log, now_ms, timers};
use crate::Error;
use crate::host::{
    Body, CallId, Counter, GrpcCall, Headers, Histogram, Host, HttpCall, LogLevel, MetadataSource,
    Property, TimerId,
};

/// One stream's view of the proxy.
#[derive(Debug)]
pub(super) struct WasmHost {
    /// The stream's context id (timers fire on it).
    context_id: u32,
    /// Size of the body the current body callback is about (what the filter holds).
    pub(super) body_size: usize,
    /// Whether the response headers arrived: a callout answer then resumes the response.
    pub(super) response_started: bool,
    /// Set when the current callback armed a timer (the stream then registers itself).
    pub(super) armed: bool,
    /// The last timer id given out.
    last_timer: u64,
}

impl WasmHost {
    /// The host of stream `context_id`.
    pub(super) fn new(context_id: u32) -> Self {
        Self {
            context_id,
            body_size: 0,
            response_started: false,
            armed: false,
            last_timer: 0,
        }
    }
}

fn map_type(map: Headers) -> MapType {
    match map {
        Headers::Request => MapType::HttpRequestHeaders,
        Headers::Response => MapType::HttpResponseHeaders,
        Headers::RequestTrailers => MapType::HttpRequestTrailers,
        Headers::ResponseTrailers => MapType::HttpResponseTrailers,
    }
}

fn buffer_type(which: Body) -> BufferType {
    match which {
        Body::Request => BufferType::HttpRequestBody,
        Body::Response => BufferType::HttpResponseBody,
    }
}

fn checked<T>(call: &'static str, name: &str, result: Result<T, Status>) -> Result<T, Error> {
    result.map_err(|Status(status)| {
        let error = Error::host(call, format!("{name}: host status {status}"));
        log(LogLevel::Warn, &error.to_string());
        error
    })
}

/// What a read gave, as text: nothing when it failed (logged), was absent, or is not UTF-8.
fn text(call: &'static str, name: &str, read: Result<Option<Vec<u8>>, Status>) -> Option<String> {
    checked(call, name, read)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

impl Host for WasmHost {
    fn header(&self, map: Headers, name: &str) -> Option<String> {
        text("header", name, abi::header(map_type(map), name))
    }

    fn header_values(&self, map: Headers, name: &str) -> Vec<String> {
        // The proxy-wasm ABI reads one value per name: the whole map is the way to all of them.
        self.headers(map)
            .into_iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
            .collect()
    }

    fn headers(&self, map: Headers) -> Vec<(String, String)> {
        checked("headers", "map", abi::header_pairs(map_type(map))).unwrap_or_default()
    }

    fn set_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        checked(
            "set_header",
            name,
            abi::replace_header(map_type(map), name, value),
        )
    }

    fn add_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        checked(
            "add_header",
            name,
            abi::add_header(map_type(map), name, value),
        )
    }

    fn remove_header(&mut self, map: Headers, name: &str) -> Result<(), Error> {
        checked(
            "remove_header",
            name,
            abi::remove_header(map_type(map), name),
        )
    }

    fn body(&self, which: Body) -> Vec<u8> {
        let read = abi::buffer(buffer_type(which), 0, self.body_size);
        checked("body", "body", read).unwrap_or_default()
    }

    fn set_body(&mut self, which: Body, bytes: &[u8]) -> Result<(), Error> {
        let span = (0, self.body_size);
        checked(
            "set_body",
            "body",
            abi::set_buffer(buffer_type(which), span, bytes),
        )?;
        self.body_size = bytes.len();
        Ok(())
    }

    fn http_call(&mut self, call: &HttpCall<'_>) -> Result<CallId, Error> {
        let mut headers = vec![
            (":method", call.method),
            (":path", call.path),
            (":authority", call.authority),
        ];
        headers.extend(call.headers.iter().copied());
        let body = (!call.body.is_empty()).then_some(call.body);
        hostcalls::dispatch_http_call(call.cluster, headers, body, Vec::new(), call.timeout)
            .map(|token| CallId(u64::from(token)))
            .map_err(|status| {
                let error = Error::host("http_call", format!("{}: {status:?}", call.cluster));
                log(LogLevel::Warn, &error.to_string());
                error
            })
    }

    fn grpc_call(&mut self, call: &GrpcCall<'_>) -> Result<CallId, Error> {
        let (cluster, service, method) = (call.cluster, call.service, call.method);
        let message = Some(call.message);
        hostcalls::dispatch_grpc_call(cluster, service, method, Vec::new(), message, call.timeout)
            .map(|token| CallId(u64::from(token)))
            .map_err(|status| {
                let error = Error::host("grpc_call", format!("{cluster}: {status:?}"));
                log(LogLevel::Warn, &error.to_string());
                error
            })
    }

    fn set_timer(&mut self, delay: std::time::Duration) -> Result<TimerId, Error> {
        self.last_timer += 1;
        let id = TimerId(self.last_timer);
        timers::arm(self.context_id, id, delay, now_ms())?;
        self.armed = true;
        Ok(id)
    }

    fn property(&self, property: Property) -> Option<String> {
        let path = property.path();
        text("property", path[1], abi::property(&path))
    }

    fn metadata(&self, source: MetadataSource, namespace: &str, key: &str) -> Option<String> {
        let path = match source {
            MetadataSource::Dynamic => vec!["metadata", "filter_metadata", namespace, key],
            MetadataSource::Route => {
                vec!["xds", "route_metadata", "filter_metadata", namespace, key]
            }
        };
        text("metadata", key, abi::property(&path))
    }

    fn set_metadata(&mut self, _namespace: &str, _key: &str, _value: &str) -> Result<(), Error> {
        Err(Error::SET_METADATA_ON_WASM)
    }

    fn filter_state(&self, key: &str) -> Option<Vec<u8>> {
        checked("filter_state", key, abi::property(&[key]))
            .ok()
            .flatten()
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        checked("set_filter_state", key, abi::set_property(&[key], value))
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        checked("shared_data", key, abi::shared_data(key))
            .ok()
            .flatten()
    }

    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error> {
        match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
            Err(Status(CAS_MISMATCH)) => Err(Error::CasMismatch { key: key.into() }),
            other => checked("set_shared_data", key, other),
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn increment(&mut self, counter: Counter, by: u64) {
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        let _ = hostcalls::increment_metric(counter.0 as u32, by);
    }

    fn record(&mut self, histogram: Histogram, value: u64) {
        let _ = hostcalls::record_metric(histogram.0 as u32, value);
    }

    fn now_millis(&self) -> u64 {
        now_ms()
    }
}
