//! meshplug's domain core: the decisions of the control plane as plain Rust, with no
//! protobuf, gRPC, HTTP, Wasm runtime or file I/O (`cargo tree -p meshplug-core` shows none of
//! `tonic`, `axum`, `wasmi`, `envoy-types`).
//!
//! - [`artifact`]: which file names are builds and configurations; [`check`]: the structural
//!   check of a build's bytes; [`debounce`]: when a written file has settled.
//! - [`manifest`]: `kind: Plugin`, `Listener` and `Cluster` documents; [`catalog`]: the
//!   manifests in force; [`compose`]: each listener's filter chain.
//! - [`registry`]: the inputs of each plugin (builds seen, settings, last refusal).
//! - [`nodes`]: the node model, one record per proxy, fed by [`nodes::NodeEvent`]s.
//! - [`rollout`]: policy, cohorts, traffic comparison, the gate decision and the saved record.
//! - [`signature`]: detached minisign signatures over builds, checked against trusted keys.
//!
//! The runtime crate (`meshplug`) does the I/O around it; `meshplug-envoy` translates it to
//! Envoy's protobuf.

pub mod artifact;
pub mod catalog;
pub mod check;
pub mod compose;
pub mod config_shape;
pub mod debounce;
pub mod digest;
pub mod manifest;
pub mod nodes;
pub mod registry;
pub mod rollout;
pub mod signature;
