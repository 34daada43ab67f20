//! Health signals per proxy, from the stats Envoy pushes: request totals over time windows,
//! load errors per filter, and restarts. Domain types: the gRPC edge decodes Envoy's metric
//! families into a [`FlushSample`].

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::traffic::Totals;

/// How long samples are kept.
const RETAIN_MS: u64 = 15 * 60 * 1000;

/// One stats flush of one Envoy, decoded. Serialized when a replica relays it to the leader.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlushSample {
    /// `http.<prefix>.downstream_rq_completed` since the last flush, summed over listeners.
    pub completed: u64,
    /// `http.<prefix>.downstream_rq_5xx` since the last flush.
    pub rq_5xx: u64,
    /// `http.<prefix>.downstream_rq_time` over the flush interval, summed over listeners.
    /// (Measured on 1.40: the `metrics_service` sink sends each flush's interval histogram,
    /// not the cumulative one.)
    pub rq_time: Option<Histogram>,
    /// Heartbeat counters by filter name (`meshplug_heartbeat_<filter>`), since the last flush.
    pub heartbeats: BTreeMap<String, u64>,
    /// `config_fail`, `update_rejected` and `update_failure` by ECDS filter name, since the last
    /// flush.
    pub load_errors: BTreeMap<String, u64>,
    /// `config_reload` by ECDS filter name, since the last flush (it counts rejected updates
    /// too, so it means "applied" only with no load error beside it).
    pub reloads: BTreeMap<String, u64>,
    /// `server.uptime` in seconds.
    pub uptime_s: Option<u64>,
}

/// A histogram: sample count and cumulative counts at bucket upper bounds (ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// All samples.
    pub count: u64,
    /// (upper bound in ms, samples at or below it), ascending.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Samples at or below `bound_ms` (the largest bucket bound not above it).
    pub fn at_or_below(&self, bound_ms: f64) -> u64 {
        self.buckets
            .iter()
            .take_while(|(upper, _)| *upper <= bound_ms)
            .last()
            .map_or(0, |(_, count)| *count)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Stamped {
    at_ms: u64,
    totals: Totals,
    heartbeats: BTreeMap<String, u64>,
    load_errors: BTreeMap<String, u64>,
}

/// What one proxy reported over time.
#[derive(Debug, Clone, Default)]
pub struct NodeSignals {
    samples: VecDeque<Stamped>,
    last_uptime_s: Option<u64>,
    restarts: Vec<u64>,
    last_seen_ms: Option<u64>,
}

impl NodeSignals {
    /// Records a flush received at `at_ms`; `slow_ms` is the slow-request threshold. Returns
    /// whether the flush shows a restart (`server.uptime` went down).
    pub fn record(&mut self, at_ms: u64, sample: &FlushSample, slow_ms: f64) -> bool {
        let restarted = matches!(
            (self.last_uptime_s, sample.uptime_s),
            (Some(before), Some(now)) if now < before
        );
        if restarted {
            self.restarts.push(at_ms);
        }
        if sample.uptime_s.is_some() {
            self.last_uptime_s = sample.uptime_s;
        }
        let (timed, slow) = self.histogram_delta(sample.rq_time.as_ref(), slow_ms);
        self.samples.push_back(Stamped {
            at_ms,
            totals: Totals {
                completed: sample.completed,
                rq_5xx: sample.rq_5xx,
                timed,
                slow,
                heartbeats: 0,
            },
            heartbeats: sample.heartbeats.clone(),
            load_errors: sample.load_errors.clone(),
        });
        self.last_seen_ms = Some(at_ms);
        while self
            .samples
            .front()
            .is_some_and(|s| s.at_ms + RETAIN_MS < at_ms)
        {
            self.samples.pop_front();
        }
        restarted
    }

    /// (timed, slow) in one flush's interval histogram.
    fn histogram_delta(&mut self, histogram: Option<&Histogram>, slow_ms: f64) -> (u64, u64) {
        let Some(histogram) = histogram else {
            return (0, 0);
        };
        let fast = histogram.at_or_below(slow_ms).min(histogram.count);
        (histogram.count, histogram.count - fast)
    }

    /// Request totals of flushes received in `from_ms..to_ms`, with `filter`'s heartbeats.
    pub fn totals(&self, from_ms: u64, to_ms: u64, filter: &str) -> Totals {
        let mut sum = Totals::default();
        for stamped in self
            .samples
            .iter()
            .filter(|s| (from_ms..to_ms).contains(&s.at_ms))
        {
            let mut totals = stamped.totals;
            totals.heartbeats = stamped.heartbeats.get(filter).copied().unwrap_or(0);
            sum += totals;
        }
        sum
    }

    /// Load errors of `filter` in flushes received after `since_ms`.
    pub fn load_errors_since(&self, filter: &str, since_ms: u64) -> u64 {
        self.samples
            .iter()
            .filter(|s| s.at_ms > since_ms)
            .filter_map(|s| s.load_errors.get(filter))
            .sum()
    }

    /// Load errors of `filter` in flushes received after `pushed_ms` that are not the late
    /// count of an earlier rejection: Envoy counts a rejected update (`update_rejected`) in
    /// its next stats flush, up to a flush interval after its NACK, so a version pushed right
    /// after another was NACKed (at `earlier_nack_ms`) can see that count arrive after its
    /// push. When no flush between that NACK and the push carried a load error, the first
    /// one after the push is that NACK's, not this version's.
    pub fn load_errors_after(
        &self,
        filter: &str,
        pushed_ms: u64,
        earlier_nack_ms: Option<u64>,
    ) -> u64 {
        let after = self.load_errors_since(filter, pushed_ms);
        let retained_from = self.samples.front().map_or(u64::MAX, |s| s.at_ms);
        let Some(nack_ms) = earlier_nack_ms.filter(|at| (retained_from..=pushed_ms).contains(at))
        else {
            return after;
        };
        let counted: u64 = self
            .samples
            .iter()
            .filter(|s| s.at_ms > nack_ms && s.at_ms <= pushed_ms)
            .filter_map(|s| s.load_errors.get(filter))
            .sum();
        match counted {
            0 => after.saturating_sub(1),
            _ => after,
        }
    }

    /// The first restart seen after `since_ms`.
    pub fn restart_after(&self, since_ms: u64) -> Option<u64> {
        self.restarts.iter().copied().find(|at| *at > since_ms)
    }

    /// Notes a restart seen another way (the proxy's stream dropped and came back).
    pub fn note_restart(&mut self, at_ms: u64) {
        self.restarts.push(at_ms);
    }

    /// When the last flush arrived.
    pub fn last_seen_ms(&self) -> Option<u64> {
        self.last_seen_ms
    }
}

#[cfg(test)]
mod tests;
