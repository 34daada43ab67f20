//! Whether the version a node runs is failing: "applied" means loaded *and* not failing. The
//! rollout looks judge each proxy's own traffic and load errors ([`crate::rollout::health`]);
//! the engine records the verdict here, the one owner of per-node facts.

use serde::{Deserialize, Serialize};

use super::{FilterOnNode, Nodes};

/// A loaded version that is failing on one node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failing {
    /// The version label judged.
    pub version: String,
    /// What the look saw (the 5xx ratio against the baseline, load errors).
    pub reason: String,
    /// When it was first judged failing, ms since the Unix epoch.
    pub since_unix_ms: u64,
}

impl Nodes {
    /// Records a look at `version` of `filter` on node `id`: `Some(reason)` when it is
    /// failing, `None` when it is not (any earlier failing verdict on it is cleared). A node
    /// no longer running `version` is left alone. Returns whether the record changed.
    pub fn set_failing(
        &mut self,
        id: &str,
        filter: &str,
        version: &str,
        failing: Option<&str>,
        now_ms: u64,
    ) -> bool {
        let Some(state) = self
            .nodes
            .get_mut(id)
            .and_then(|node| node.filters.get_mut(filter))
            .filter(|state| state.acked.as_deref() == Some(version))
        else {
            return false;
        };
        let next = match (failing, &state.failing) {
            (None, _) => None,
            (Some(reason), Some(before)) if before.version == version => Some(Failing {
                reason: reason.to_string(),
                ..before.clone()
            }),
            (Some(reason), _) => Some(Failing {
                version: version.to_string(),
                reason: reason.to_string(),
                since_unix_ms: now_ms,
            }),
        };
        let changed = next != state.failing;
        state.failing = next;
        self.dirty |= changed;
        changed
    }
}

impl FilterOnNode {
    /// The failing verdict on the version it runs (its ACKed one), if any.
    pub fn failing_now(&self) -> Option<&Failing> {
        self.failing
            .as_ref()
            .filter(|f| Some(&f.version) == self.acked.as_ref())
    }

    /// Whether its ACKed version is applied, as `meshplug status` and the dashboard say it:
    /// `failing`, `yes` (loaded and not failing), `no` (ACKed, not seen loading), or `-`
    /// (nothing ACKed).
    pub fn applied_state(&self) -> &'static str {
        match (&self.applied, &self.acked) {
            (_, Some(_)) if self.failing_now().is_some() => "failing",
            (Some(applied), Some(acked)) if applied == acked => "yes",
            (_, Some(_)) => "no",
            _ => "-",
        }
    }

    /// Whether its ACKed version is loaded and not failing.
    pub fn healthy(&self) -> bool {
        self.applied_state() == "yes"
    }

    /// A failing verdict is about one version: sending another forgets it.
    pub(super) fn forget_failing_other_than(&mut self, version: &str) {
        if self.failing.as_ref().is_some_and(|f| f.version != version) {
            self.failing = None;
        }
    }
}

#[cfg(test)]
mod tests;
