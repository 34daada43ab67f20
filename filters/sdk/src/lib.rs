//! meshplug's filter SDK: write an Envoy HTTP filter once, in plain Rust, and ship it as a
//! proxy-wasm module (`.wasm`) or as an Envoy 1.40 dynamic module (`.so`).
//!
//! A filter is two types: a [`FilterConfig`] parsed once from JSON into the filter's own serde
//! type, and an [`HttpFilter`] created per request whose callbacks get a [`Host`] and answer an
//! [`Action`] (continue, stop, or a [`LocalReply`]). Filters are generic over [`Host`], so their
//! unit tests run against [`mock::MockHost`] with no Envoy and no Wasm.
//!
//! [`export_filter!`] exports a filter for whichever target is being built:
//! - `wasm32`: a thin adapter over the `proxy-wasm` 0.2 crate;
//! - anything else: our own bindings to Envoy 1.40's dynamic-module C ABI (`native`), covering
//!   what this SDK needs. Envoy's callbacks are looked up with `dlsym` when the module loads; a
//!   missing one fails the load cleanly instead of crashing later. No panic crosses the FFI
//!   boundary: it is caught, the request gets a 500, and `meshplug_panics_<plugin>` counts it.
//!
//! What a filter can do, and which target can do it, is the capability table in
//! `filters/sdk/README.md`; each row links to an example under `filters/examples/` that is built
//! both ways and tested through a real Envoy. A call one target cannot make returns
//! [`Error::Unsupported`] there, never a silent no-op.

// A filter runs inside every proxy: it answers errors, it never panics on purpose.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)
)]

mod error;
mod filter;
mod host;
pub mod mock;
mod shared;
mod wire;

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod native;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use error::Error;
pub use filter::{Action, FilterConfig, HttpFilter, Loaded, LocalReply, Metrics, load};
pub use host::{
    Body, CallId, CallResponse, Counter, GrpcCall, GrpcResponse, Headers, Histogram, Host,
    HttpCall, LogLevel, MetadataSource, Property, TimerId,
};

/// The Envoy release whose dynamic-module ABI the native backend binds. A `.so` built with this
/// SDK reports it (symbol `meshplug_envoy_version`), and meshplug sends the module only to
/// proxies that run this exact version.
pub const ENVOY_VERSION: &str = "1.40.0";

/// The ABI version string the native backend reports to Envoy from
/// `envoy_dynamic_module_on_program_init`.
pub const ABI_VERSION: &str = "v0.2.0";

/// Exports `$filter` (a type implementing [`HttpFilter`]) as the module's filter, for the target
/// being built. Use it once per filter crate, at the crate root.
#[macro_export]
macro_rules! export_filter {
    ($filter:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn _initialize() {
            $crate::wasm::start::<$filter>();
        }

        #[cfg(all(not(target_arch = "wasm32"), not(test)))]
        $crate::__export_native!($filter);
    };
}
