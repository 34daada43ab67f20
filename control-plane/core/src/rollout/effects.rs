//! What a rollout step wants done, returned instead of done: the steps only change rollout
//! state in memory. the runtime's engine applies effects in one order, in one place:
//! persist the rollout state, append the decisions to the log, raise the alerts and count the
//! metrics, record per-proxy health in the node model, then re-serve the proxies. So no proxy is ever served a version whose rollout
//! state is not on disk, and the log never names a state that was not saved.

use std::collections::BTreeSet;

use super::decide::Gate;
use super::record::Decision;

/// A counter or histogram a step moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Count {
    Started(String),
    Promoted(String),
    RolledBack(String, Gate),
    RollbackSeconds(f64),
}

/// The effects of one or more steps, in the order they were asked for.
#[derive(Debug, Default)]
pub struct Effects {
    /// Rollout state changed: save it before anything else.
    pub save: bool,
    /// Rollout state changed in a way that may wait for the next tick (a proxy joined).
    pub save_soon: bool,
    /// Decision-log entries, each with whether it raises an alert.
    pub decisions: Vec<(Decision, bool)>,
    /// Metrics to move.
    pub counts: Vec<Count>,
    /// Proxies to serve again.
    pub serve: BTreeSet<String>,
    /// Serve every known proxy again.
    pub serve_all: bool,
    /// Per-proxy looks at the version each runs, for the node model.
    pub health: Vec<NodeHealth>,
}

/// One proxy's look at the version of a plugin it was handed: failing, and why, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// `node.id`.
    pub node: String,
    /// The plugin.
    pub plugin: String,
    /// The version judged.
    pub version: String,
    /// Why it is failing; `None` when it is not.
    pub failing: Option<String>,
    /// When it was judged.
    pub at_ms: u64,
}

impl Effects {
    /// Logs `entry`.
    pub fn log(&mut self, entry: Decision) {
        self.decisions.push((entry, false));
    }

    /// Logs `entry` and raises an alert about it.
    pub fn alert(&mut self, entry: Decision) {
        self.decisions.push((entry, true));
    }

    /// Serves these proxies again.
    pub fn serve<'a>(&mut self, nodes: impl IntoIterator<Item = &'a String>) {
        self.serve.extend(nodes.into_iter().cloned());
    }

    /// Adds `later`'s effects after these.
    pub fn merge(&mut self, later: Effects) {
        self.save |= later.save;
        self.save_soon |= later.save_soon;
        self.decisions.extend(later.decisions);
        self.counts.extend(later.counts);
        self.serve.extend(later.serve);
        self.serve_all |= later.serve_all;
        self.health.extend(later.health);
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.save
            && !self.save_soon
            && self.decisions.is_empty()
            && self.counts.is_empty()
            && self.serve.is_empty()
            && !self.serve_all
            && self.health.is_empty()
    }
}
