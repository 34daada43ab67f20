//! The traffic gate: a canary cohort's 5xx ratio, share of slow requests and heartbeat ratio
//! against a baseline, with Wilson score intervals and a practical margin. Pure and
//! deterministic: the same totals always give the same look.

use serde::{Deserialize, Serialize};

use super::policy::TrafficPolicy;

/// Request counts summed over a cohort and a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Completed downstream requests.
    pub completed: u64,
    /// Of those, answered 5xx.
    pub rq_5xx: u64,
    /// Requests with a recorded duration.
    pub timed: u64,
    /// Of those, slower than the policy's threshold.
    pub slow: u64,
    /// Heartbeats the filter emitted (one per request it saw).
    pub heartbeats: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.completed = self.completed.saturating_add(other.completed);
        self.rq_5xx = self.rq_5xx.saturating_add(other.rq_5xx);
        self.timed = self.timed.saturating_add(other.timed);
        self.slow = self.slow.saturating_add(other.slow);
        self.heartbeats = self.heartbeats.saturating_add(other.heartbeats);
    }
}

/// What one look at the traffic says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "look", rename_all = "snake_case")]
pub enum TrafficLook {
    /// No clear difference.
    Pass,
    /// The canary is clearly worse.
    Fail {
        /// Which signal, and by how much.
        reason: String,
    },
    /// Too few requests to say.
    Inconclusive {
        /// Why.
        reason: String,
    },
    /// The baseline itself is unhealthy: nothing can be judged against it.
    BaselineUnhealthy {
        /// How.
        reason: String,
    },
}

/// A proportion's Wilson score interval at `z`.
pub fn wilson(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Compares `canary` with `baseline`. The canary fails a signal only when the lower bound of
/// its interval is above the upper bound of the baseline's by more than the margin.
pub fn compare(policy: &TrafficPolicy, canary: &Totals, baseline: &Totals) -> TrafficLook {
    let min = policy.min_samples;
    if canary.completed < min || baseline.completed < min {
        return TrafficLook::Inconclusive {
            reason: format!(
                "{} canary and {} baseline requests; {min} each needed",
                canary.completed, baseline.completed
            ),
        };
    }
    let baseline_5xx = ratio(baseline.rq_5xx, baseline.completed);
    if baseline_5xx > policy.baseline_max_5xx {
        return TrafficLook::BaselineUnhealthy {
            reason: format!(
                "baseline 5xx ratio {:.3} is above {:.3}",
                baseline_5xx, policy.baseline_max_5xx
            ),
        };
    }
    let z = policy.z;
    let worse = |name: &str, c: (u64, u64), b: (u64, u64), margin: f64| {
        let (c_low, _) = wilson(c.0, c.1, z);
        let (_, b_high) = wilson(b.0, b.1, z);
        (c_low > b_high + margin).then(|| {
            format!(
                "{name}: canary {:.3} ({}/{}) vs baseline {:.3} ({}/{}); interval gap {:.3} > margin {margin:.3}",
                ratio(c.0, c.1), c.0, c.1, ratio(b.0, b.1), b.0, b.1, c_low - b_high
            )
        })
    };
    let checks = [
        worse(
            "5xx ratio",
            (canary.rq_5xx, canary.completed),
            (baseline.rq_5xx, baseline.completed),
            policy.max_5xx_increase,
        ),
        (canary.timed >= min && baseline.timed >= min)
            .then(|| {
                worse(
                    "slow share",
                    (canary.slow, canary.timed),
                    (baseline.slow, baseline.timed),
                    policy.max_slow_increase,
                )
            })
            .flatten(),
        (baseline.heartbeats > 0)
            .then(|| {
                // A drop in heartbeats is a rise in requests the filter did not see.
                let missed = |t: &Totals| t.completed.saturating_sub(t.heartbeats);
                worse(
                    "requests bypassing the filter (heartbeat drop)",
                    (missed(canary), canary.completed),
                    (missed(baseline), baseline.completed),
                    policy.max_heartbeat_drop,
                )
            })
            .flatten(),
    ];
    match checks.into_iter().flatten().next() {
        Some(reason) => TrafficLook::Fail { reason },
        None => TrafficLook::Pass,
    }
}

#[cfg(test)]
mod tests;
