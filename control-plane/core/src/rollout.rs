//! Health-gated rollouts, the pure part: the [`policy`] a plugin rolls out under, how
//! [`cohort`]s are chosen, how canary [`traffic`] compares with a baseline, the gate
//! decision ([`decide`]), the per-proxy health [`signals`], and the saved [`record`].
//! The runtime's engine carries the decisions out.

pub mod cohort;
pub mod decide;
pub mod policy;
pub mod record;
pub mod signals;
pub mod traffic;

pub use policy::Policy;
pub use record::Release;
