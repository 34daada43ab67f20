//! The meshplug control plane's runtime, as a library under the thin `meshplug` binary: the
//! I/O around `meshplug-core` (the domain) and `meshplug-envoy` (the translation to Envoy).
//!
//! Data flow: the [`watcher`] sees a filter artifact (`<name>.wasm`) or its configuration
//! (`<name>.json`) settle in the artifacts folder; [`ingest`] reads it once complete, hashes it
//! (sha256), [`check`]s it, keeps it in the content-addressed [`store`], and publishes an ECDS
//! resource built by [`ecds`] into the `xds` crate's snapshot cache. Envoy fetches it over ADS;
//! every connect, send, ACK and NACK updates the node model (`meshplug_core::nodes`, owned by
//! the [`rollout`] engine), which the [`admin`] API serves.
//!
//! Domain types carry no protobuf. Envoy messages are built by `meshplug-envoy` ([`ecds`]:
//! filter configurations; [`compose`]'s `envoy` encoder: listeners, routes, clusters); the
//! rollout engine's serving wraps them into each node's snapshot; [`metrics_sink`] decodes
//! Envoy's stats. The command line is [`cli`].

pub mod admin;
pub mod agent;
pub mod artifacts;
pub mod builtin;
pub mod cli;
pub mod client;
mod error;
pub mod idle;
pub mod ingest;
pub mod manifest_watch;
pub mod metrics_sink;
pub mod mode;
pub mod pki;
pub mod preflight;
pub mod refusals;
pub mod replica;
pub mod rollout;
pub mod scaffold;
pub mod serve;
pub mod store;
pub mod testkit;
pub mod tls;
pub mod watcher;
pub mod xds_metrics;

pub use error::Error;

// The domain core and the Envoy translation, under the paths the runtime and its tests use.
pub use meshplug_core::{artifact, catalog, check, debounce, manifest, registry};
pub use meshplug_envoy::{bootstrap, ecds};

/// Each listener's filter chain ([`meshplug_core::compose`]) and its Envoy encoding
/// ([`meshplug_envoy::compose`], as `compose::envoy`).
pub mod compose {
    pub use meshplug_core::compose::*;
    pub use meshplug_envoy::compose as envoy;
}
