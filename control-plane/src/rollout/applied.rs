//! "Applied": a proxy ACKed a filter version and then reported loading it. Envoy ACKs once it
//! accepted an update; its `config_reload` counter (streamed with its stats) moves when the
//! filter is rebuilt. `config_reload` also counts rejected updates, so a reload counts only
//! in a flush with no load error for that filter, and only after the version was sent.

use std::collections::HashMap;

use super::engine::Engine;

/// When each (node, filter) was last sent a version and last reported a clean reload.
#[derive(Debug, Default)]
pub(super) struct ReloadClock {
    sent_ms: HashMap<(String, String), u64>,
    reloaded_ms: HashMap<(String, String), u64>,
}

impl ReloadClock {
    /// Forgets everything about `node`.
    pub(super) fn forget(&mut self, node: &str) {
        self.sent_ms.retain(|(n, _), _| n != node);
        self.reloaded_ms.retain(|(n, _), _| n != node);
    }
}

impl Engine {
    /// A version of `filter` was sent to `node`.
    pub(super) fn note_sent(&mut self, node: &str, filter: &str, now_ms: u64) {
        let key = (node.to_string(), filter.to_string());
        self.reloads.sent_ms.insert(key, now_ms);
    }

    /// A stats flush from `node` showed `filter` reloaded with no load error.
    pub(super) fn note_reload(&mut self, node: &str, filter: &str, now_ms: u64) {
        let key = (node.to_string(), filter.to_string());
        self.reloads.reloaded_ms.insert(key, now_ms);
        self.settle_applied(node, filter);
    }

    /// Marks the ACKed version of `filter` on `node` applied once a reload followed its send.
    pub(super) fn settle_applied(&mut self, node: &str, filter: &str) {
        let key = (node.to_string(), filter.to_string());
        let (Some(sent), Some(reloaded)) = (
            self.reloads.sent_ms.get(&key),
            self.reloads.reloaded_ms.get(&key),
        ) else {
            return;
        };
        if reloaded < sent {
            return;
        }
        let Some(record) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(acked) = record.acked.get(filter).cloned() else {
            return;
        };
        if record.applied.get(filter) != Some(&acked) {
            record.applied.insert(filter.to_string(), acked);
            self.nodes_dirty = true;
        }
    }
}

#[cfg(test)]
mod tests;
