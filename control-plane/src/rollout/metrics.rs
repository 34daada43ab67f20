//! Prometheus metrics of rollouts: started, promoted, rolled back (by gate), alerts, rollouts
//! in progress by stage, and how long rollbacks take to reach every proxy.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::decide::Gate;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RollbackLabels {
    plugin: String,
    gate: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    plugin: String,
    kind: String,
}

/// The rollout metrics, registered once.
#[derive(Debug)]
pub struct RolloutMetrics {
    started: Family<PluginLabel, Counter>,
    promoted: Family<PluginLabel, Counter>,
    rolled_back: Family<RollbackLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
    rollback_seconds: Histogram,
    in_progress: Family<StageLabel, Gauge>,
}

impl RolloutMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            started: Family::default(),
            promoted: Family::default(),
            rolled_back: Family::default(),
            alerts: Family::default(),
            rollback_seconds: Histogram::new([0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
            in_progress: Family::default(),
        };
        registry.register(
            "meshplug_rollouts_in_progress",
            "Rollouts in progress, by stage (step-1, step-2, ..., bake, paused)",
            metrics.in_progress.clone(),
        );
        registry.register(
            "meshplug_rollouts_started",
            "Rollouts started",
            metrics.started.clone(),
        );
        registry.register(
            "meshplug_rollouts_promoted",
            "Rollouts promoted to last good",
            metrics.promoted.clone(),
        );
        registry.register(
            "meshplug_rollbacks",
            "Rollbacks to the last good version, by gate",
            metrics.rolled_back.clone(),
        );
        registry.register(
            "meshplug_alerts",
            "Alerts raised, by kind",
            metrics.alerts.clone(),
        );
        registry.register(
            "meshplug_rollback_duration_seconds",
            "From the rollback decision to every affected proxy ACKing the last good version",
            metrics.rollback_seconds.clone(),
        );
        metrics
    }

    /// Metrics nobody reads (tests).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    pub(super) fn started(&self, plugin: &str) {
        self.started
            .get_or_create(&PluginLabel {
                plugin: plugin.into(),
            })
            .inc();
    }

    pub(super) fn promoted(&self, plugin: &str) {
        self.promoted
            .get_or_create(&PluginLabel {
                plugin: plugin.into(),
            })
            .inc();
    }

    pub(super) fn rolled_back(&self, plugin: &str, gate: Gate) {
        let gate = format!("{gate:?}").to_lowercase();
        self.rolled_back
            .get_or_create(&RollbackLabels {
                plugin: plugin.into(),
                gate,
            })
            .inc();
    }

    pub(super) fn alert(&self, plugin: &str, kind: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                plugin: plugin.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// Sets the rollouts in progress: how many are in each stage now.
    pub fn set_in_progress(&self, by_stage: &std::collections::BTreeMap<String, i64>) {
        self.in_progress.clear();
        for (stage, count) in by_stage {
            self.in_progress
                .get_or_create(&StageLabel {
                    stage: stage.clone(),
                })
                .set(*count);
        }
    }

    pub(super) fn rollback_seconds(&self, seconds: f64) {
        self.rollback_seconds.observe(seconds);
    }
}
