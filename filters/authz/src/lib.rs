//! `authz`: an API-key allowlist HTTP filter for Envoy.
//!
//! A request without the key header gets 401, a request with a key that is not on the list gets
//! 403, and an allowed request goes on; its response carries `x-meshplug-filter: authz/<build>`,
//! so a caller can see which build served it.
//!
//! The decision is plain Rust in [`policy`], tested without any host. [`wasm`] is the thin
//! proxy-wasm adapter, compiled only for `wasm32`; it never unwraps a host call.

pub mod policy;
#[cfg(target_arch = "wasm32")]
mod wasm;

/// The build this filter reports, set at compile time by `MESHPLUG_BUILD_ID` (default `dev`).
pub const BUILD_ID: &str = match option_env!("MESHPLUG_BUILD_ID") {
    Some(id) => id,
    None => "dev",
};

/// The response header that names the filter and its build.
pub const FILTER_HEADER: &str = "x-meshplug-filter";

/// The value of [`FILTER_HEADER`].
pub fn filter_tag() -> String {
    format!("authz/{BUILD_ID}")
}
