//! Health-gated rollouts: a new version of a filter goes to a canary cohort of proxies, is
//! judged against a baseline cohort by hard gates (ACK/NACK, load errors, restarts) and a soft
//! traffic gate (5xx, slow requests, heartbeats), and is promoted step by step, or rolled back
//! to the last good version and quarantined.
//!
//! The decisions and the steps that move rollouts are pure and live in `meshplug-core`
//! (re-exported here: [`decide`], [`lifecycle`], [`progress`], [`releases`], [`commands`],
//! ...): they change the rollout state in memory and return effects. Here is the I/O: the
//! [`engine`] owns the state's parts and applies the effects in one order (persist, log,
//! alert, re-serve), `serving` writes snapshots, and [`state`] is where the state is kept.

pub mod engine;
pub mod metrics;
mod serving;
pub mod state;

pub use meshplug_core::rollout::{
    cohort, commands, decide, effects, lifecycle, placement, policy, progress, releases, signals,
    traffic, world,
};

pub use engine::Engine;
pub use meshplug_core::rollout::{Command, ReleaseOutcome, RolloutError};
pub use policy::Policy;
pub use state::Release;
