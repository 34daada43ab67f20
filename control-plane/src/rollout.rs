//! Health-gated rollouts: a new version of a filter goes to a canary cohort of proxies, is
//! judged against a baseline cohort by hard gates (ACK/NACK, load errors, restarts) and a soft
//! traffic gate (5xx, slow requests, heartbeats), and is promoted step by step, or rolled back
//! to the last good version and quarantined.
//!
//! The decision core ([`decide`], [`traffic`], [`cohort`], [`policy`], [`signals`]) lives in
//! `meshplug-core`. Here the steps that move rollouts ([`lifecycle`], `progress`, `releases`,
//! [`commands`]) are pure: they change the rollout state in memory and return effects. The
//! [`engine`] is the I/O shell that owns the state's parts and applies the effects in one
//! order (persist, log, alert, re-serve); [`state`] is where the state is kept.
//!
//! Module layering, lowest first, none importing a higher one: `effects`, `placement`,
//! `world` → `lifecycle` → `progress` → `releases` → `commands`, `serving` → `engine`.

pub mod commands;
mod effects;
pub mod engine;
mod lifecycle;
pub mod metrics;
mod placement;
mod progress;
mod releases;
mod serving;
pub mod state;
mod world;

pub use meshplug_core::rollout::{cohort, decide, policy, signals, traffic};

pub use commands::Command;
pub use engine::Engine;
pub use policy::Policy;
pub use releases::ReleaseOutcome;
pub use state::Release;
