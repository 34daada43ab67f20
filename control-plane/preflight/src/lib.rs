//! Pre-flight for proxy-wasm filters: a proxy-wasm ABI 0.2 host on `wasmi` that checks a
//! module the way Envoy 1.40 would load it, and then more.
//!
//! What it does, in order, stopping at the first failure with a [`Rejection`] that names the cause
//! (and carries the filter's own log lines where it ran):
//! 1. size limit, and the configuration against the filter's JSON Schema if one is given;
//! 2. compiles the module; checks it exports a supported `proxy_abi_version_*`, memory, an
//!    allocator and the lifecycle functions, and imports only functions Envoy provides;
//! 3. runs VM start and plugin configure with the real configuration;
//! 4. without fixtures, drives one smoke request (`GET /` and a `200` answer) through a new
//!    HTTP context: a module that cannot make one is refused with the reason (a
//!    background-only plugin, a network filter), as is one that traps on it;
//! 5. drives each [`Fixture`] request through the filter (request headers and body, then a
//!    simulated upstream response) and compares the outcome with its expectation. The
//!    filter's HTTP and gRPC callouts are answered from the fixture's `callouts`, in order,
//!    and its callbacks run as Envoy would run them (a callout with no answer fails).
//!
//! Every call into the module has a fuel budget, so an infinite loop becomes a rejection, and
//! the store has a memory limit. A trap (a Rust panic aborts into one) is a rejection.
//!
//! What it does not do: run native `.so` modules (they cannot be sandboxed in-process), make
//! real callouts (the fixture answers them), open gRPC streams (`InternalFailure`, logged), or
//! fire timers on their own before a request (a fixture's `ticks` drives `proxy_on_tick`).
//! A request paused while the filter keeps a tick waits on it: ticks are delivered on a sandbox
//! clock that moves one period each, up to a minute of it, until the filter resumes or answers.
//!
//! The runtime is `wasmi`, an interpreter: it validates the whole module up front but
//! translates a function only when it first runs, and the pre-flight runs a handful of them.
//! Compiling every function ahead (wasmtime, even with its baseline compiler Winch) cost tens
//! of milliseconds on the hot-swap path for a 190 KB module; see BENCHMARKS.md.

#[cfg(feature = "sandbox")]
mod abi;
#[cfg(feature = "sandbox")]
mod callout;
mod case;
mod error;
mod fixture;
#[cfg(feature = "sandbox")]
mod host;
#[cfg(feature = "sandbox")]
mod imports;
#[cfg(feature = "sandbox")]
mod run;
#[cfg(feature = "sandbox")]
mod schema;
#[cfg(feature = "sandbox")]
mod smoke;
#[cfg(feature = "sandbox")]
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "sandbox")]
mod vm;

pub use case::{Case, CasesFile, Load, Send, Step, Swap, config_text};
pub use error::Rejection;
#[cfg(feature = "sandbox")]
pub use fixture::compare;
pub use fixture::{
    CalloutResponse, Expectation, Fixture, FixtureRequest, Outcome, Property, UpstreamResponse,
    parse_fixtures,
};
#[cfg(feature = "sandbox")]
pub use run::{Limits, Preflight, Report, VmInputs};
