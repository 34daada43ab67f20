use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::Snapshot;

/// Snapshots by group key, each behind a watch channel that streams of that group follow.
///
/// Setting a snapshot never blocks on streams: each stream reads the newest snapshot when it is
/// ready, so a slow stream skips intermediate versions instead of holding up the others.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    groups: Mutex<HashMap<String, watch::Sender<Arc<Snapshot>>>>,
}

impl SnapshotCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the snapshot of `group`. Streams are notified only when it differs.
    pub fn set_snapshot(&self, group: &str, snapshot: Snapshot) {
        self.update(group, |current| {
            *current = snapshot;
            true
        });
    }

    /// Edits the snapshot of `group` in place. `edit` returns whether it changed anything; only
    /// then are the group's streams notified. Returns that answer.
    pub fn update(&self, group: &str, edit: impl FnOnce(&mut Snapshot) -> bool) -> bool {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = groups
            .entry(group.to_string())
            .or_insert_with(|| watch::channel(Arc::new(Snapshot::new())).0);
        sender.send_if_modified(|current| {
            let mut next = Snapshot::clone(current);
            if edit(&mut next) && next != **current {
                *current = Arc::new(next);
                true
            } else {
                false
            }
        })
    }

    /// The current snapshot of `group` (empty when none was set).
    pub fn snapshot(&self, group: &str) -> Arc<Snapshot> {
        self.watch(group).borrow().clone()
    }

    /// A receiver that sees every new snapshot of `group`.
    pub fn watch(&self, group: &str) -> watch::Receiver<Arc<Snapshot>> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups
            .entry(group.to_string())
            .or_insert_with(|| watch::channel(Arc::new(Snapshot::new())).0)
            .subscribe()
    }

    /// Drops `group`'s snapshot if no stream watches it. Returns whether it was dropped.
    pub fn remove_unwatched(&self, group: &str) -> bool {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let unwatched = groups.get(group).is_some_and(|s| s.receiver_count() == 0);
        if unwatched {
            groups.remove(group);
        }
        unwatched
    }

    /// The group keys that have a snapshot or a watcher.
    pub fn groups(&self) -> Vec<String> {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<String> = groups.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests;
