//! The proxy-wasm backend: a thin adapter over the `proxy-wasm` 0.2 crate. Host-call failures
//! are logged and reported as [`Error`]s, never unwrapped. A Wasm panic aborts the VM (Envoy's
//! failure policy then applies); it cannot be caught here.

use std::marker::PhantomData;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action as WasmAction, BufferType, ContextType, LogLevel as WasmLevel, MapType, MetricType,
};

use crate::Error;
use crate::filter::{Action, HttpFilter, Loaded, Metrics, load};
use crate::host::{Body, Counter, Headers, Histogram, Host, LogLevel};

/// Registers `F` as the module's root context. Called from the module's `_initialize`.
pub fn start<F: HttpFilter>() {
    proxy_wasm::set_log_level(WasmLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root::<F> {
            loaded: None,
            filter: PhantomData,
        })
    });
}

fn wasm_level(level: LogLevel) -> WasmLevel {
    match level {
        LogLevel::Trace => WasmLevel::Trace,
        LogLevel::Debug => WasmLevel::Debug,
        LogLevel::Info => WasmLevel::Info,
        LogLevel::Warn => WasmLevel::Warn,
        LogLevel::Error => WasmLevel::Error,
    }
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(wasm_level(level), message);
}

struct Root<F: HttpFilter> {
    loaded: Option<Loaded<F::Config>>,
    filter: PhantomData<F>,
}

struct WasmMetrics;

impl Metrics for WasmMetrics {
    fn counter(&mut self, name: &str) -> Result<Counter, Error> {
        hostcalls::define_metric(MetricType::Counter, name)
            .map(|id| Counter(id as usize))
            .map_err(|status| Error::host("define_metric", format!("{name}: {status:?}")))
    }

    fn histogram(&mut self, name: &str) -> Result<Histogram, Error> {
        hostcalls::define_metric(MetricType::Histogram, name)
            .map(|id| Histogram(id as usize))
            .map_err(|status| Error::host("define_metric", format!("{name}: {status:?}")))
    }
}

fn plugin_name() -> String {
    hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "filter".into())
}

impl<F: HttpFilter> Context for Root<F> {}

impl<F: HttpFilter> RootContext for Root<F> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("cannot read configuration: {status:?}"),
                );
                return false;
            }
        };
        let plugin = plugin_name();
        match load::<F::Config>(&plugin, &bytes, &mut WasmMetrics) {
            Ok(loaded) => {
                log(LogLevel::Info, &format!("{plugin}: configuration accepted"));
                self.loaded = Some(loaded);
                true
            }
            Err(error) => {
                log(LogLevel::Error, &format!("{plugin}: {error}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let loaded = self.loaded.as_ref()?;
        Some(Box::new(Stream::<F> {
            filter: F::new(&loaded.config),
            heartbeat: loaded.heartbeat,
            host: WasmHost { body_size: 0 },
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream<F> {
    filter: F,
    heartbeat: Option<Counter>,
    host: WasmHost,
}

/// Turns an SDK action into a proxy-wasm one, sending the local reply if there is one.
fn act(action: Action) -> WasmAction {
    match action {
        Action::Continue => WasmAction::Continue,
        Action::Stop => WasmAction::Pause,
        Action::Reply(reply) => {
            let headers: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let sent =
                hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
            if let Err(status) = sent {
                log(LogLevel::Error, &format!("local reply failed: {status:?}"));
            }
            WasmAction::Pause
        }
    }
}

impl<F: HttpFilter> Context for Stream<F> {}

impl<F: HttpFilter> HttpContext for Stream<F> {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> WasmAction {
        if let Some(heartbeat) = self.heartbeat {
            self.host.increment(heartbeat, 1);
        }
        act(self
            .filter
            .on_request_headers(&mut self.host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        self.host.body_size = body_size;
        act(self.filter.on_request_body(&mut self.host, end_of_stream))
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> WasmAction {
        act(self
            .filter
            .on_response_headers(&mut self.host, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        self.host.body_size = body_size;
        act(self.filter.on_response_body(&mut self.host, end_of_stream))
    }

    fn on_log(&mut self) {
        self.filter.on_complete(&mut self.host);
    }
}

struct WasmHost {
    /// Size of the body chunk of the current body callback.
    body_size: usize,
}

fn map_type(map: Headers) -> MapType {
    match map {
        Headers::Request => MapType::HttpRequestHeaders,
        Headers::Response => MapType::HttpResponseHeaders,
    }
}

fn checked(
    call: &'static str,
    name: &str,
    result: Result<(), proxy_wasm::types::Status>,
) -> Result<(), Error> {
    result.map_err(|status| {
        let error = Error::host(call, format!("{name}: {status:?}"));
        log(LogLevel::Warn, &error.to_string());
        error
    })
}

impl Host for WasmHost {
    fn header(&self, map: Headers, name: &str) -> Option<String> {
        hostcalls::get_map_value(map_type(map), name).ok().flatten()
    }

    fn set_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        checked(
            "set_header",
            name,
            hostcalls::set_map_value(map_type(map), name, Some(value)),
        )
    }

    fn add_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        checked(
            "add_header",
            name,
            hostcalls::add_map_value(map_type(map), name, value),
        )
    }

    fn remove_header(&mut self, map: Headers, name: &str) -> Result<(), Error> {
        checked(
            "remove_header",
            name,
            hostcalls::set_map_value(map_type(map), name, None),
        )
    }

    fn body(&self, which: Body) -> Vec<u8> {
        let buffer = match which {
            Body::Request => BufferType::HttpRequestBody,
            Body::Response => BufferType::HttpResponseBody,
        };
        hostcalls::get_buffer(buffer, 0, self.body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
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
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }
}
