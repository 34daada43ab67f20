//! The meshplug control plane, as a library under the thin `meshplug` binary.
//!
//! Data flow: the [`watcher`] sees a filter artifact (`<name>.wasm`) or its configuration
//! (`<name>.json`) settle in the artifacts folder; [`ingest`] reads it once complete, hashes it
//! (sha256), [`check`]s it, keeps it in the content-addressed [`store`], and publishes an ECDS
//! resource built by [`ecds`] into the `xds` crate's snapshot cache. Envoy fetches it over ADS;
//! every send, ACK and NACK updates the [`fleet`] view, which the [`admin`] API serves.
//!
//! Domain types here carry no protobuf. Envoy messages are built in [`ecds`] (filter
//! configurations), [`compose`]'s `envoy` encoder (listeners, routes, clusters) and the rollout
//! engine's placement (which wraps them for each node's snapshot); [`metrics_sink`] decodes
//! Envoy's stats. The command line is [`cli`].

pub mod admin;
pub mod artifact;
pub mod bootstrap;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod client;
pub mod compose;
pub mod debounce;
pub mod ecds;
mod error;
pub mod fleet;
pub mod idle;
pub mod ingest;
pub mod manifest;
pub mod manifest_watch;
pub mod metrics_sink;
pub mod preflight;
pub mod refusals;
pub mod registry;
pub mod rollout;
pub mod serve;
pub mod store;
pub mod watcher;
pub mod xds_metrics;

pub use error::Error;
