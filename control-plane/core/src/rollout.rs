//! Health-gated rollouts, the pure part: the [`policy`] a plugin rolls out under, how
//! [`cohort`]s are chosen, how canary [`traffic`] compares with a baseline, the gate
//! decision ([`decide`]), the per-proxy health [`signals`], and the saved [`record`].
//!
//! The steps that move rollouts are pure too: [`lifecycle`] (start, advance, promote, roll
//! back, cancel), [`progress`] (looks, joins, deadlines), [`releases`] (a new version
//! arrives) and [`commands`] (manual controls) change [`lifecycle::Rollouts`] in memory,
//! read a [`world::World`] (policy, [`placement`], node model, signals), and return
//! [`effects::Effects`]. The runtime's engine applies the effects, in one order.
//!
//! Layering, lowest first, no module importing a higher one: `effects`, `placement`, `world`
//! → `lifecycle` → `progress` → `releases` → `commands`.

pub mod cohort;
pub mod commands;
pub mod decide;
pub mod effects;
mod error;
pub mod health;
pub mod history;
pub mod lifecycle;
pub mod placement;
pub mod policy;
pub mod progress;
pub mod record;
pub mod releases;
pub mod signals;
pub mod traffic;
pub mod world;

pub use commands::Command;
pub use error::RolloutError;
pub use policy::Policy;
pub use record::Release;
pub use releases::ReleaseOutcome;
