//! meshplug's translation to Envoy 1.40: the domain core's values become Envoy protobuf here
//! and nowhere else in meshplug (the `xds` crate speaks the protocol around them).
//!
//! - [`ecds`]: a plugin release as an ECDS `TypedExtensionConfig` (Wasm or dynamic module).
//! - [`compose`]: a compose plan as listeners, routes and clusters.
//! - [`bootstrap`]: rendering the bootstrap templates under `envoy-config/`.

pub mod bootstrap;
pub mod compose;
pub mod ecds;
mod error;

pub use error::Error;
