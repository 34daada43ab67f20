//! Health-gated rollouts: a new version of a filter goes to a canary cohort of proxies, is
//! judged against a baseline cohort by hard gates (ACK/NACK, load errors, restarts) and a soft
//! traffic gate (5xx, slow requests, heartbeats), and is promoted step by step, or rolled back
//! to the last good version and quarantined.
//!
//! The decision core ([`decide`], [`traffic`], [`cohort`]) is pure. [`engine`] is the I/O shell:
//! persisted [`state`], per-proxy snapshots, the decision log and alerts.

mod applied;
pub mod commands;
pub mod engine;
pub mod metrics;
mod placement;
mod progress;
mod serving;
pub mod state;

pub use meshplug_core::rollout::{cohort, decide, policy, signals, traffic};

pub use commands::Command;
pub use engine::{Engine, ReleaseOutcome};
pub use policy::Policy;
pub use state::Release;
