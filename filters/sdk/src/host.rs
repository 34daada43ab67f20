//! What a filter may ask of the proxy it runs in. Each backend (proxy-wasm, Envoy dynamic
//! module, the mock) implements [`Host`]; filters are generic over it.

use crate::Error;

/// Which header map a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Headers {
    /// The request headers, towards the upstream.
    Request,
    /// The response headers, towards the client.
    Response,
    /// The request trailers (readable and writable in [`crate::HttpFilter::on_request_trailers`]).
    RequestTrailers,
    /// The response trailers (in [`crate::HttpFilter::on_response_trailers`]).
    ResponseTrailers,
}

/// Which body a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// The request body.
    Request,
    /// The response body.
    Response,
}

/// Request and connection facts the proxy knows (Envoy's attributes), as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// `source.address`: the downstream peer, `ip:port`.
    SourceAddress,
    /// `destination.address`: the local address the request arrived on, `ip:port`.
    DestinationAddress,
    /// `request.id`: the `x-request-id` Envoy assigned.
    RequestId,
    /// `request.protocol`: e.g. `HTTP/1.1`.
    RequestProtocol,
    /// `connection.requested_server_name`: the TLS SNI (empty on plain text).
    RequestedServerName,
    /// `connection.tls_version`: e.g. `TLSv1.3` (absent on plain text).
    TlsVersion,
}

impl Property {
    /// The attribute's name in Envoy's documentation, e.g. `source.address`.
    pub fn path(self) -> [&'static str; 2] {
        match self {
            Self::SourceAddress => ["source", "address"],
            Self::DestinationAddress => ["destination", "address"],
            Self::RequestId => ["request", "id"],
            Self::RequestProtocol => ["request", "protocol"],
            Self::RequestedServerName => ["connection", "requested_server_name"],
            Self::TlsVersion => ["connection", "tls_version"],
        }
    }
}

/// Where a metadata value is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataSource {
    /// The stream's dynamic metadata, which earlier filters (Lua, ext_authz, ...) set.
    Dynamic,
    /// The matched route's `metadata.filter_metadata`: per-route settings, on both targets.
    Route,
}

/// An HTTP request to another service (a callout), answered through
/// [`crate::HttpFilter::on_http_call_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall<'a> {
    /// The Envoy cluster to call (meshplug: a `kind: Cluster` manifest the plugin lists in
    /// `spec.callouts`).
    pub cluster: &'a str,
    /// `:method`.
    pub method: &'a str,
    /// `:path`.
    pub path: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// Further request headers.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body (may be empty).
    pub body: &'a [u8],
    /// How long Envoy waits for the whole answer.
    pub timeout: std::time::Duration,
}

impl<'a> HttpCall<'a> {
    /// `GET path` on `cluster` with `:authority` `authority` and a 5 s timeout.
    pub fn get(cluster: &'a str, authority: &'a str, path: &'a str) -> Self {
        Self {
            cluster,
            method: "GET",
            path,
            authority,
            headers: Vec::new(),
            body: &[],
            timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// A unary gRPC call to another service, answered through
/// [`crate::HttpFilter::on_grpc_call_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall<'a> {
    /// The Envoy cluster to call (it must speak HTTP/2).
    pub cluster: &'a str,
    /// The fully qualified service, e.g. `envoy.service.auth.v3.Authorization`.
    pub service: &'a str,
    /// The method, e.g. `Check`.
    pub method: &'a str,
    /// The request message, already encoded (protobuf).
    pub message: &'a [u8],
    /// How long Envoy waits for the whole answer.
    pub timeout: std::time::Duration,
}

/// What came back from a gRPC call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrpcResponse {
    /// The gRPC status code: 0 is OK; 14 (unavailable) when the call never got an answer.
    pub status: u32,
    /// The status message, if any.
    pub message: Option<String>,
    /// The response message (encoded), empty unless the status is OK.
    pub body: Vec<u8>,
}

/// A timer's identity, as [`Host::set_timer`] returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// A callout's identity, as [`Host::http_call`] returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// What came back from a callout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallResponse {
    /// The answer's `:status`; 0 when the call failed.
    pub status: u16,
    /// The answer's headers (without `:status`).
    pub headers: Vec<(String, String)>,
    /// The answer's body.
    pub body: Vec<u8>,
    /// Why the call failed (reset, timeout, no healthy host, answer too large), if it did.
    pub failure: Option<String>,
}

impl CallResponse {
    /// A successful answer.
    pub fn ok(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            ..Self::default()
        }
    }

    /// An answer as the proxy hands it over: `headers` with `:status` among them.
    pub fn answered(mut headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let status = headers
            .iter()
            .position(|(name, _)| name == ":status")
            .map(|at| headers.remove(at).1);
        Self {
            status: status.and_then(|s| s.parse().ok()).unwrap_or(0),
            headers,
            body,
            failure: None,
        }
    }

    /// A failed call.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            failure: Some(reason.into()),
            ..Self::default()
        }
    }
}

/// The first value of header `name` (any case) among `pairs`.
pub(crate) fn value_of<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Log levels, as the proxy knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very verbose.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal events.
    Info,
    /// Something odd, handled.
    Warn,
    /// Something failed.
    Error,
}

/// A counter defined by the filter at configuration time (see [`crate::Metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter(pub(crate) usize);

/// A histogram defined by the filter at configuration time (see [`crate::Metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Histogram(pub(crate) usize);

/// The per-request view of the proxy. Calls never panic; a failed mutation is an [`Error`] the
/// filter may ignore (the backend has already logged it).
pub trait Host {
    /// The first value of header `name` (lower case), if present and valid UTF-8. Read a map
    /// in its own callback (or later, for the request headers once the response arrives, on a
    /// `.so` only): Envoy's proxy-wasm host refuses a request header read in a body callback,
    /// so there the SDK logs the refusal and returns `None`. Keep what later callbacks need.
    fn header(&self, map: Headers, name: &str) -> Option<String>;

    /// Every value of header `name`, in order (values that are not UTF-8 are left out).
    fn header_values(&self, map: Headers, name: &str) -> Vec<String>;

    /// Every header of `map`, in order, one pair per value (pseudo-headers included).
    fn headers(&self, map: Headers) -> Vec<(String, String)>;

    /// Hands the first value of header `name` to `f`, without a copy where the target allows
    /// it: a `.so` lends Envoy's own buffer for the call; proxy-wasm's ABI copies a value into
    /// the module whatever the SDK does, so there (and on the mock) it is [`Host::header`].
    fn with_header<R>(&self, map: Headers, name: &str, f: impl FnOnce(Option<&str>) -> R) -> R {
        f(self.header(map, name).as_deref())
    }

    /// Replaces every value of header `name` with `value`.
    fn set_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error>;

    /// Adds a value to header `name`, keeping the ones already there.
    fn add_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error>;

    /// Removes header `name`.
    fn remove_header(&mut self, map: Headers, name: &str) -> Result<(), Error>;

    /// In a body callback: the body this filter holds, that is every chunk it answered
    /// [`crate::Action::Stop`] to, and the current chunk. Stop on every chunk and read it at
    /// `end_of_stream` to see the whole body (when trailers follow, no body callback has
    /// `end_of_stream`: the trailers callback comes last). Envoy bounds what it buffers (the listener's
    /// buffer limit, 1 MiB by default): beyond it Envoy itself answers 413 (request) or 500
    /// (response). Empty outside a body callback.
    fn body(&self, which: Body) -> Vec<u8>;

    /// In a body callback: replaces what [`Host::body`] returns with `bytes`. The filter should
    /// remove or fix `content-length` in the headers callback if it changes the size.
    fn set_body(&mut self, which: Body, bytes: &[u8]) -> Result<(), Error>;

    /// Starts a callout; the answer arrives in [`crate::HttpFilter::on_http_call_response`].
    /// Answer [`crate::Action::Stop`] from the current callback to wait for it.
    fn http_call(&mut self, call: &HttpCall<'_>) -> Result<CallId, Error>;

    /// Starts a unary gRPC call; the answer arrives in
    /// [`crate::HttpFilter::on_grpc_call_response`]. Answer [`crate::Action::Stop`] to wait.
    fn grpc_call(&mut self, call: &GrpcCall<'_>) -> Result<CallId, Error>;

    /// Calls [`crate::HttpFilter::on_timer`] on this stream after `delay` (on the stream's own
    /// thread). Answer [`crate::Action::Stop`] to hold the request or response meanwhile. As
    /// `.wasm` timers ride the VM's tick, so they fire up to 10 ms late; as `.so`, a timer
    /// thread wakes Envoy's worker on time. A stream that ends first never sees its timers.
    fn set_timer(&mut self, delay: std::time::Duration) -> Result<TimerId, Error>;

    /// A request or connection fact, if the proxy knows it.
    fn property(&self, property: Property) -> Option<String>;

    /// The string value of `key` in metadata namespace `namespace` of `source`.
    fn metadata(&self, source: MetadataSource, namespace: &str, key: &str) -> Option<String>;

    /// Sets string `key` in the stream's dynamic metadata namespace `namespace`, for later
    /// filters and access logs. `.so` only: Envoy's proxy-wasm host cannot write dynamic
    /// metadata, so a `.wasm` build gets [`Error::Unsupported`] (use filter state there).
    fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error>;

    /// Bytes stored under `key` in the stream's filter state by this filter (or, as `.so`, by
    /// another module). A `.wasm` build's keys live under Envoy's `wasm.` prefix.
    fn filter_state(&self, key: &str) -> Option<Vec<u8>>;

    /// Stores `value` under `key` in the stream's filter state.
    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), Error>;

    /// The value under `key` in data shared by every stream and worker of this filter build,
    /// with its version for [`Host::set_shared_data`]'s compare-and-swap.
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)>;

    /// Stores `value` under `key`. With `cas`, only if the value is still at that version,
    /// else [`Error::CasMismatch`] (read again and retry).
    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error>;

    /// Writes a line to the proxy's log.
    fn log(&self, level: LogLevel, message: &str);

    /// Adds `by` to a counter.
    fn increment(&mut self, counter: Counter, by: u64);

    /// Records one value in a histogram.
    fn record(&mut self, histogram: Histogram, value: u64);

    /// Milliseconds since the Unix epoch, by the proxy's clock.
    fn now_millis(&self) -> u64;
}
