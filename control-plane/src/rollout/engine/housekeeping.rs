//! The engine's housekeeping: the node model saved at most once a second, the `alive` mark,
//! and proxies gone too long forgotten.

use super::Engine;

impl Engine {
    /// Saves the node model if it changed and was last saved a second ago or more.
    pub(super) fn save_nodes_due(&mut self, now_ms: u64) {
        if self.nodes.dirty() && now_ms >= self.clock.nodes_saved_ms + 1000 {
            match self.store.save_nodes(self.nodes.saved()) {
                Ok(()) => {
                    self.nodes.mark_saved();
                    self.clock.nodes_saved_ms = now_ms;
                }
                Err(err) => tracing::error!(error = %err, "saving node state"),
            }
        }
    }

    /// Forgets proxies disconnected for more than `after_ms` (at `now_ms`; one saved from
    /// before this process and never back counts from when it started): their node record,
    /// signals and snapshot. A proxy a rollout in progress counts (canary, baseline, pushed)
    /// is kept until the rollout ends. Returns the forgotten.
    pub fn forget_disconnected(&mut self, now_ms: u64, after_ms: u64) -> Vec<String> {
        let in_rollouts = self.rollouts.counted_nodes();
        let opened = self.clock.opened_ms.unwrap_or(now_ms);
        let gone: Vec<String> = self
            .nodes
            .gone_longer_than(now_ms, after_ms, opened)
            .filter(|id| !in_rollouts.contains(id))
            .cloned()
            .collect();
        for id in &gone {
            self.nodes.forget(id);
            self.signals.remove(id);
            self.serving.forget(id);
        }
        gone
    }

    pub(super) fn mark_alive(&mut self, now_ms: u64) {
        if let Err(err) = self.store.mark_alive(now_ms) {
            tracing::warn!(error = %err, "marking the control plane alive");
        }
        self.clock.alive_marked_ms = Some(now_ms);
    }
}
