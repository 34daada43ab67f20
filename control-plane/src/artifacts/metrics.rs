//! The artifact service's counters.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How one fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// 200, the whole artifact.
    Served,
    /// 206, a range of it.
    Partial,
    /// 304: the fetcher has it.
    NotModified,
    /// 404: not an artifact name, or not in the store.
    NotFound,
    /// 410: quarantined.
    Withheld,
    /// 503: no turn within the queue timeout.
    Busy,
    /// The store could not be read.
    Failed,
}

impl Outcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::Partial => "partial",
            Self::NotModified => "not_modified",
            Self::NotFound => "not_found",
            Self::Withheld => "withheld",
            Self::Busy => "busy",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// `meshplug_artifact_fetches_total{result}`, `meshplug_artifact_bytes_served_total` and
/// `meshplug_artifact_fetches_in_flight`.
#[derive(Debug, Default)]
pub struct ArtifactMetrics {
    fetches: Family<ResultLabel, Counter>,
    bytes: Counter,
    in_flight: Gauge,
}

impl ArtifactMetrics {
    /// Registers the counters in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "meshplug_artifact_fetches",
            "Artifact service requests, by how they ended",
            metrics.fetches.clone(),
        );
        registry.register(
            "meshplug_artifact_bytes_served",
            "Artifact bytes streamed to fetchers",
            metrics.bytes.clone(),
        );
        registry.register(
            "meshplug_artifact_fetches_in_flight",
            "Artifact bodies streaming now",
            metrics.in_flight.clone(),
        );
        metrics
    }

    pub(super) fn count(&self, outcome: Outcome) {
        self.fetches
            .get_or_create(&ResultLabel {
                result: outcome.label(),
            })
            .inc();
    }

    pub(super) fn served_bytes(&self, n: usize) {
        self.bytes.inc_by(n as u64);
    }

    pub(super) fn started(&self) {
        self.in_flight.inc();
    }

    pub(super) fn finished(&self) {
        self.in_flight.dec();
    }

    /// Fetches so far that ended as `result` (e.g. `served`).
    pub fn fetches(&self, result: &str) -> u64 {
        [
            Outcome::Served,
            Outcome::Partial,
            Outcome::NotModified,
            Outcome::NotFound,
            Outcome::Withheld,
            Outcome::Busy,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.label() == result)
        .map_or(0, |o| {
            self.fetches
                .get_or_create(&ResultLabel { result: o.label() })
                .get()
        })
    }

    /// Bytes streamed so far.
    pub fn bytes_served(&self) -> u64 {
        self.bytes.get()
    }
}
