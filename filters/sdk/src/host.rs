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
}

/// Which body a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// The request body chunk being processed.
    Request,
    /// The response body chunk being processed.
    Response,
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
    /// The first value of header `name` (lower case), if present and valid UTF-8.
    fn header(&self, map: Headers, name: &str) -> Option<String>;

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

    /// The body chunk the current body callback is about (empty outside a body callback).
    fn body(&self, which: Body) -> Vec<u8>;

    /// Writes a line to the proxy's log.
    fn log(&self, level: LogLevel, message: &str);

    /// Adds `by` to a counter.
    fn increment(&mut self, counter: Counter, by: u64);

    /// Records one value in a histogram.
    fn record(&mut self, histogram: Histogram, value: u64);

    /// Milliseconds since the Unix epoch, by the proxy's clock.
    fn now_millis(&self) -> u64;
}
