//! Canary and baseline cohorts, chosen together by a stable hash of (rollout, node).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::policy::Step;

/// The proxies of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cohorts {
    /// Proxies that run the new version.
    pub canary: BTreeSet<String>,
    /// Proxies that keep the last good version and are compared with the canary. Empty when
    /// the fleet is too small: the canary is then compared with its own history.
    pub baseline: BTreeSet<String>,
}

/// Where `node` falls in `rollout`'s order: the same inputs always give the same rank.
pub fn rank(rollout: &str, node: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(rollout.as_bytes());
    hasher.update([0]);
    hasher.update(node.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Chooses the cohorts of `step` among `connected` proxies. Proxies already running the new
/// version (`already`) stay in the canary, so a step only ever adds proxies. The baseline is the
/// next proxies in rank order, as many as the canary where the fleet allows.
pub fn choose(
    rollout: &str,
    step: &Step,
    connected: &BTreeSet<String>,
    already: &BTreeSet<String>,
) -> Cohorts {
    let mut order: Vec<&String> = connected.iter().collect();
    order.sort_by_key(|node| (!already.contains(*node), rank(rollout, node), *node));
    let size = step
        .cohort_size(order.len())
        .max(already.len().min(order.len()));
    let canary: BTreeSet<String> = order.iter().take(size).map(|n| (*n).clone()).collect();
    let baseline = order
        .iter()
        .skip(size)
        .take(size)
        .map(|n| (*n).clone())
        .collect();
    Cohorts { canary, baseline }
}

#[cfg(test)]
mod tests;
