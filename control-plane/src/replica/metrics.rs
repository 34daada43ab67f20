//! The replicas' metrics: leadership, its changes, fenced writes, watch restarts and relayed
//! flushes dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Registered under `meshplug_replica_*`.
#[derive(Debug, Default)]
pub struct ReplicaMetrics {
    leading: Gauge,
    leadership_changes: Counter,
    fenced: Counter,
    /// What `fenced` last read from the store's count.
    fenced_seen: AtomicU64,
    watch_restarts: Counter,
    relay_dropped: Counter,
}

impl ReplicaMetrics {
    /// Registers these metrics in `registry`.
    pub fn registered_in(&self, registry: &mut Registry) {
        let metrics = self;
        registry.register(
            "meshplug_replica_leading",
            "1 while this replica leads (it takes the decisions), else 0",
            metrics.leading.clone(),
        );
        registry.register(
            "meshplug_replica_leadership_changes",
            "Times this replica started or stopped leading",
            metrics.leadership_changes.clone(),
        );
        registry.register(
            "meshplug_replica_fenced_writes",
            "Writes of this replica etcd refused because its term no longer led",
            metrics.fenced.clone(),
        );
        registry.register(
            "meshplug_replica_watch_restarts",
            "Times the cluster watch was lost and resumed, or replaced by a full read",
            metrics.watch_restarts.clone(),
        );
        registry.register(
            "meshplug_replica_relay_dropped",
            "Stats flushes a follower could not deliver to the leader",
            metrics.relay_dropped.clone(),
        );
    }

    pub(super) fn leadership_changed(&self, leading: bool) {
        self.leading.set(i64::from(leading));
        self.leadership_changes.inc();
    }

    /// The store's count of fenced writes is now `total`.
    pub(super) fn fenced_total(&self, total: u64) {
        let before = self.fenced_seen.swap(total, Ordering::Relaxed);
        self.fenced.inc_by(total.saturating_sub(before));
    }

    pub(super) fn watch_restarts(&self, more: u64) {
        self.watch_restarts.inc_by(more);
    }

    pub(super) fn relay_dropped(&self, more: u64) {
        self.relay_dropped.inc_by(more);
    }
}
