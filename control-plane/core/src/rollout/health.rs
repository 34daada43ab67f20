//! Health after the push, per proxy and for a first version. Pure.
//!
//! - Each traffic look also judges every proxy that runs the new version on its own: its
//!   traffic against the look's baseline (its own history before the push when the baseline
//!   is history), and its load errors. The verdicts become [`NodeHealth`] effects, so the
//!   node model's "applied" means loaded *and* not failing.
//! - A first version has no last good to go back to. When a gate that watches a running filter
//!   (traffic, loaded, liveness) fails it, its `failurePolicy` decides: `failOpen` takes it off
//!   every proxy (they skip the filter again), `failClosed` and `reload` keep it, pause the
//!   rollout for a person, and alert.

use std::collections::HashMap;

use super::decide::{BaselineKind, CanaryNode, Gate, TrafficInput, Verdict};
use super::effects::NodeHealth;
use super::policy::TrafficPolicy;
use super::record::Rollout;
use super::signals::NodeSignals;
use super::traffic::{TrafficLook, compare};
use crate::manifest::FailurePolicy;

/// What one traffic look needs to judge each proxy.
#[derive(Debug, Clone, Copy)]
pub struct NodeLook<'a> {
    pub plugin: &'a str,
    pub rollout: &'a Rollout,
    pub policy: &'a TrafficPolicy,
    /// The look's inputs: its baseline, and what it is.
    pub traffic: &'a TrafficInput,
    /// The canary's window: `from_ms..to_ms`.
    pub window: (u64, u64),
    /// The clock.
    pub now_ms: u64,
}

/// Judges each proxy that ACKed the new version: load errors since its push fail it; else its
/// own traffic is compared with the baseline. A proxy with too few requests to say is left out
/// (its record stays as it was).
pub fn node_looks(
    look: &NodeLook<'_>,
    canary: &[CanaryNode],
    signals: &HashMap<String, NodeSignals>,
) -> Vec<NodeHealth> {
    let verdict = |node: &CanaryNode| -> Option<Option<String>> {
        if node.load_errors > 0 {
            return Some(Some(format!(
                "{} load errors since the push",
                node.load_errors
            )));
        }
        let (from, to) = look.window;
        let own = signals.get(&node.id)?.totals(from, to, look.plugin);
        let baseline = match look.traffic.baseline_kind {
            BaselineKind::History => look.rollout.history.get(&node.id).copied()?,
            BaselineKind::Cohort => look.traffic.baseline,
        };
        match compare(look.policy, &own, &baseline) {
            TrafficLook::Fail { reason } => Some(Some(reason)),
            TrafficLook::Pass => Some(None),
            TrafficLook::Inconclusive { .. } | TrafficLook::BaselineUnhealthy { .. } => None,
        }
    };
    canary
        .iter()
        .filter(|node| node.acked)
        .filter_map(|node| {
            Some(NodeHealth {
                node: node.id.clone(),
                plugin: look.plugin.to_string(),
                version: look.rollout.to.version.clone(),
                failing: verdict(node)?,
                at_ms: look.now_ms,
            })
        })
        .collect()
}

/// A verdict as it applies to `rollout`, and whether a pause it becomes waits for a person.
/// Only a first version's failure of a gate that watches a running filter changes: see the
/// module documentation.
pub fn first_version_verdict(rollout: &Rollout, verdict: Verdict) -> (Verdict, bool) {
    let Verdict::Rollback { gate, reason } = verdict else {
        return (verdict, false);
    };
    let watches_running = matches!(gate, Gate::Traffic | Gate::Loaded | Gate::Liveness);
    if rollout.from.is_some() || !watches_running {
        return (Verdict::Rollback { gate, reason }, false);
    }
    match rollout.to.failure_policy {
        FailurePolicy::FailOpen => (
            Verdict::Rollback {
                gate,
                reason: format!(
                    "first version failing, and its failurePolicy failOpen takes it off every \
                     proxy (they skip the filter): {reason}"
                ),
            },
            false,
        ),
        policy @ (FailurePolicy::FailClosed | FailurePolicy::Reload) => {
            let name = match policy {
                FailurePolicy::Reload => "reload",
                _ => "failClosed",
            };
            let reason = format!(
                "first version failing ({gate:?} gate), kept: with no last good to go back to, \
                 its failurePolicy {name} must not leave requests unfiltered; resume, promote \
                 or roll back by hand: {reason}"
            );
            (Verdict::Pause { reason }, true)
        }
    }
}

#[cfg(test)]
mod tests;
