//! The filter contract: a configuration built once, a filter per request, and what a callback
//! may answer.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::Error;
use crate::host::{CallId, CallResponse, Counter, GrpcResponse, Histogram, Host, TimerId};

/// What a callback tells the proxy to do next. What "stop" means depends on the hook, the same
/// on both targets:
///
/// | hook | [`Action::Stop`] |
/// |---|---|
/// | headers | stop iteration: later filters wait; body chunks still reach this filter |
/// | body | stop and buffer: Envoy keeps the chunk, [`Host::body`] returns it with the next ones |
/// | trailers | stop iteration |
/// | callout answer, timer | keep waiting (e.g. for a second callout) |
///
/// A stopped direction resumes when a later callback (a body chunk, a callout answer, a timer)
/// answers
/// [`Action::Continue`]. Envoy's other statuses (stop-all-and-buffer, watermark) are not
/// offered: proxy-wasm cannot return them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on to the next filter.
    Continue,
    /// Hold this direction (see the table above).
    Stop,
    /// Answer the client now; the request goes no further.
    Reply(LocalReply),
}

/// A response the filter sends itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// A short reason for access logs (Envoy's response code details), e.g. `rate_limited`.
    pub details: &'static str,
}

impl LocalReply {
    /// A reply with `status`, a plain-text `body` and `details`.
    pub fn text(status: u16, body: impl Into<String>, details: &'static str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into().into_bytes(),
            details,
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Defines the filter's own metrics while the configuration is built.
pub trait Metrics {
    /// Defines a counter named `name`.
    fn counter(&mut self, name: &str) -> Result<Counter, Error>;
    /// Defines a histogram named `name`.
    fn histogram(&mut self, name: &str) -> Result<Histogram, Error>;
}

/// A filter's configuration, parsed once per configuration update and shared by every request
/// (across worker threads for a dynamic module, hence `Send + Sync`).
pub trait FilterConfig: Sized + Send + Sync + 'static {
    /// The filter's name, used in logs and errors.
    const NAME: &'static str;
    /// The JSON shape of the configuration.
    type Settings: DeserializeOwned;

    /// Checks the parsed settings and prepares what requests need. An error rejects the
    /// configuration.
    fn build(settings: Self::Settings, metrics: &mut dyn Metrics) -> Result<Self, Error>;

    /// Turns the configuration's bytes into settings. The default reads JSON (all whitespace
    /// means `{}`); a filter configured with plain text overrides it (see
    /// `filters/examples/config-header`).
    fn parse(bytes: &[u8]) -> Result<Self::Settings, String> {
        let text = if bytes.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            bytes
        };
        serde_json::from_slice(text).map_err(|err| err.to_string())
    }
}

/// A filter instance: one per HTTP request. Every callback has a default that continues.
pub trait HttpFilter: Sized + 'static {
    /// Its configuration.
    type Config: FilterConfig;

    /// A new instance for one request.
    fn new(config: &Arc<Self::Config>) -> Self;

    /// The request headers arrived.
    fn on_request_headers<H: Host>(&mut self, _host: &mut H, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// A request body chunk arrived; read it with [`Host::body`].
    fn on_request_body<H: Host>(&mut self, _host: &mut H, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// The response headers arrived.
    fn on_response_headers<H: Host>(&mut self, _host: &mut H, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// A response body chunk arrived.
    fn on_response_body<H: Host>(&mut self, _host: &mut H, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// The request trailers arrived; read and change them as [`crate::Headers::RequestTrailers`].
    fn on_request_trailers<H: Host>(&mut self, _host: &mut H) -> Action {
        Action::Continue
    }

    /// The response trailers arrived ([`crate::Headers::ResponseTrailers`]).
    fn on_response_trailers<H: Host>(&mut self, _host: &mut H) -> Action {
        Action::Continue
    }

    /// A callout this filter started with [`Host::http_call`] was answered (or failed).
    /// [`Action::Continue`] resumes the direction the filter stopped; [`Action::Reply`]
    /// answers the client instead.
    fn on_http_call_response<H: Host>(
        &mut self,
        _host: &mut H,
        _call: CallId,
        _response: CallResponse,
    ) -> Action {
        Action::Continue
    }

    /// A gRPC call this filter started with [`Host::grpc_call`] was answered (or failed).
    /// [`Action::Continue`] resumes the direction the filter stopped.
    fn on_grpc_call_response<H: Host>(
        &mut self,
        _host: &mut H,
        _call: CallId,
        _response: GrpcResponse,
    ) -> Action {
        Action::Continue
    }

    /// A timer this filter set with [`Host::set_timer`] fired. [`Action::Continue`] resumes
    /// the direction the filter stopped; [`Action::Reply`] answers the client instead.
    fn on_timer<H: Host>(&mut self, _host: &mut H, _timer: TimerId) -> Action {
        Action::Continue
    }

    /// The stream is done (answered, reset or aborted).
    fn on_complete<H: Host>(&mut self, _host: &mut H) {}
}

/// A configuration as every backend loads it, with the counters meshplug counts for every filter.
#[derive(Debug)]
pub struct Loaded<C> {
    /// The filter's configuration.
    pub config: Arc<C>,
    /// `meshplug_heartbeat_<plugin>`: one per request the filter sees. meshplug's rollout gate
    /// compares it with the proxy's request count to spot requests that bypass the filter.
    pub heartbeat: Option<Counter>,
    /// `meshplug_panics_<plugin>`: callbacks that panicked (native backend; a Wasm panic traps).
    pub panics: Option<Counter>,
}

/// Whether filters count [`Loaded::heartbeat`]: always, but for builds made with
/// `MESHPLUG_SDK_NO_HEARTBEAT` set, which `make bench` uses to measure what the counter costs
/// (such a build fails meshplug's heartbeat gate; never ship one).
const HEARTBEAT: bool = option_env!("MESHPLUG_SDK_NO_HEARTBEAT").is_none();

/// Parses `bytes` ([`FilterConfig::parse`]: JSON unless the filter says otherwise) into `C` and defines meshplug's counters for
/// `plugin`. Every backend goes through here, so a configuration is accepted or refused the same
/// way as `.wasm` and as `.so`.
pub fn load<C: FilterConfig>(
    plugin: &str,
    bytes: &[u8],
    metrics: &mut dyn Metrics,
) -> Result<Loaded<C>, Error> {
    let settings = C::parse(bytes).map_err(|reason| Error::config(C::NAME, reason))?;
    let config = C::build(settings, metrics)?;
    Ok(Loaded {
        config: Arc::new(config),
        heartbeat: match HEARTBEAT {
            true => metrics
                .counter(&format!("meshplug_heartbeat_{plugin}"))
                .ok(),
            false => None,
        },
        panics: metrics.counter(&format!("meshplug_panics_{plugin}")).ok(),
    })
}
