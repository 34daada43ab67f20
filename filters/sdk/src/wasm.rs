//! The proxy-wasm backend: a thin adapter over the `proxy-wasm` 0.2 crate. Host-call failures
//! are logged and reported as [`Error`]s, never unwrapped. A Wasm panic aborts the VM (Envoy's
//! failure policy then applies); it cannot be caught here.

mod abi;
mod host;
mod timers;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action as WasmAction, BufferType, ContextType, LogLevel as WasmLevel, MapType, MetricType,
};

use crate::Error;
use crate::filter::{Action, HttpFilter, Loaded, Metrics, load};
use crate::host::{
    CallId, CallResponse, Counter, GrpcResponse, Histogram, Host, LogLevel, TimerId,
};
use host::WasmHost;
pub use timers::TICK;

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
    abi::property(&["plugin_name"])
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "filter".into())
}

impl<F: HttpFilter> Context for Root<F> {}

/// The proxy's clock in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

impl<F: HttpFilter> RootContext for Root<F> {
    fn on_tick(&mut self) {
        timers::tick(now_ms());
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes,
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

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let loaded = self.loaded.as_ref()?;
        let inner = Inner::<F> {
            filter: F::new(&loaded.config),
            heartbeat: loaded.heartbeat,
            host: WasmHost::new(context_id),
        };
        Some(Box::new(Stream {
            inner: Rc::new(RefCell::new(inner)),
            context_id,
            registered: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One stream: shared with the timer registry, which holds it weakly.
struct Stream<F> {
    inner: Rc<RefCell<Inner<F>>>,
    context_id: u32,
    /// Whether the timer registry knows this stream (only one that armed a timer).
    registered: bool,
}

struct Inner<F> {
    filter: F,
    heartbeat: Option<Counter>,
    host: WasmHost,
}

impl<F: HttpFilter> Stream<F> {
    /// Runs one callback, then lets timers reach this stream if it armed any.
    fn run(&mut self, callback: impl FnOnce(&mut F, &mut WasmHost) -> Action) -> WasmAction {
        let (action, armed) = {
            let mut inner = self.inner.borrow_mut();
            let Inner { filter, host, .. } = &mut *inner;
            let action = callback(filter, host);
            (action, std::mem::take(&mut host.armed))
        };
        self.register_if(armed);
        act(action)
    }

    /// Runs a callout or gRPC answer's callback ([`answer_on`]), then lets timers reach this
    /// stream if the callback armed one.
    fn answer(&mut self, callback: impl FnOnce(&mut F, &mut WasmHost) -> Action) {
        answer_on(&self.inner, callback);
        let armed = std::mem::take(&mut self.inner.borrow_mut().host.armed);
        self.register_if(armed);
    }

    /// Lets the timer registry reach this stream once it has armed a timer.
    fn register_if(&mut self, armed: bool) {
        if armed && !self.registered {
            let weak = Rc::downgrade(&self.inner);
            timers::register(self.context_id, weak);
            self.registered = true;
        }
    }
}

impl<F> Drop for Stream<F> {
    fn drop(&mut self) {
        if self.registered {
            timers::forget(self.context_id);
        }
    }
}

impl<F: HttpFilter> timers::Fire for RefCell<Inner<F>> {
    fn fire(&self, timer: TimerId) {
        // The stream is registered (that is how the timer reached it): a timer it arms here
        // reaches it too.
        answer_on(self, |filter, host| filter.on_timer(host, timer));
    }
}

/// Runs a callback outside Envoy's stream events (a callout or gRPC answer, a timer) on the
/// stream, then applies its answer once the stream is released, so a hook Envoy runs
/// meanwhile (resuming can run this filter's response hooks at once) finds it free.
fn answer_on<F: HttpFilter>(
    stream: &RefCell<Inner<F>>,
    callback: impl FnOnce(&mut F, &mut WasmHost) -> Action,
) {
    let (action, started) = {
        let Ok(mut inner) = stream.try_borrow_mut() else {
            return;
        };
        let Inner { filter, host, .. } = &mut *inner;
        (callback(filter, host), host.response_started)
    };
    follow_up(action, started);
}

/// Applies what a callback outside Envoy's stream events (a callout answer, a timer) answered:
/// resume the direction the filter stopped, answer locally, or keep waiting.
fn follow_up(action: Action, response_started: bool) {
    match action {
        Action::Continue => {
            let resumed = match response_started {
                true => hostcalls::resume_http_response(),
                false => hostcalls::resume_http_request(),
            };
            if let Err(status) = resumed {
                log(LogLevel::Warn, &format!("resume failed: {status:?}"));
            }
        }
        Action::Stop => {}
        Action::Reply(reply) => send(&reply),
    }
}

/// Sends `reply` to the client.
fn send(reply: &crate::LocalReply) {
    let status = u32::from(reply.status);
    let sent = abi::send_local_response(status, reply.details, &reply.headers, &reply.body);
    if let Err(status) = sent {
        log(LogLevel::Error, &format!("local reply failed: {status:?}"));
    }
}

/// Turns an SDK action into a proxy-wasm one, sending the local reply if there is one.
fn act(action: Action) -> WasmAction {
    match action {
        Action::Continue => WasmAction::Continue,
        Action::Stop => WasmAction::Pause,
        Action::Reply(reply) => {
            send(&reply);
            WasmAction::Pause
        }
    }
}

impl<F: HttpFilter> Context for Stream<F> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let response = call_response(num_headers, body_size);
        let id = CallId(u64::from(token));
        self.answer(|filter, host| filter.on_http_call_response(host, id, response));
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, response_size: usize) {
        // Only a failure has a message worth reading (and a host without the call cannot trap
        // an answered call).
        let message = match status {
            0 => None,
            _ => hostcalls::get_grpc_status()
                .ok()
                .and_then(|(_, message)| message),
        };
        let body = match status {
            0 => abi::buffer(BufferType::GrpcReceiveBuffer, 0, response_size).unwrap_or_default(),
            _ => Vec::new(),
        };
        let response = GrpcResponse {
            status,
            message,
            body,
        };
        let id = CallId(u64::from(token));
        self.answer(|filter, host| filter.on_grpc_call_response(host, id, response));
    }
}

/// The answer to a callout, read from the host; no headers means the call failed.
fn call_response(num_headers: usize, body_size: usize) -> CallResponse {
    if num_headers == 0 {
        return CallResponse::failed("the callout failed (reset, timeout or no healthy host)");
    }
    let headers = abi::header_pairs(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let body = abi::buffer(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default();
    CallResponse::answered(headers, body)
}

impl<F: HttpFilter> HttpContext for Stream<F> {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> WasmAction {
        let heartbeat = self.inner.borrow().heartbeat;
        self.run(|filter, host| {
            if let Some(heartbeat) = heartbeat {
                host.increment(heartbeat, 1);
            }
            filter.on_request_headers(host, end_of_stream)
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        self.run(|filter, host| {
            host.body_size = body_size;
            filter.on_request_body(host, end_of_stream)
        })
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> WasmAction {
        self.run(|filter, host| filter.on_request_trailers(host))
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> WasmAction {
        self.run(|filter, host| {
            host.response_started = true;
            filter.on_response_headers(host, end_of_stream)
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        self.run(|filter, host| {
            host.body_size = body_size;
            filter.on_response_body(host, end_of_stream)
        })
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> WasmAction {
        self.run(|filter, host| filter.on_response_trailers(host))
    }

    fn on_log(&mut self) {
        let mut inner = self.inner.borrow_mut();
        let Inner { filter, host, .. } = &mut *inner;
        filter.on_complete(host);
    }
}
