//! The rollout policy: steps over proxy cohorts, gates and their thresholds. Read from JSON with
//! durations written the way people write them (`"30s"`, `"2m"`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a new version of a filter reaches the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Policy {
    /// The cohorts, in order. The last should cover the fleet (`percent: 100`).
    pub steps: Vec<Step>,
    /// How long the hard gates (and the traffic gate against the pre-push history) keep watching
    /// after the last step before the version becomes the last good one.
    #[serde(with = "humantime_serde")]
    pub bake: Duration,
    /// A cohort node that has not ACKed the new version by then fails the acceptance gate.
    #[serde(with = "humantime_serde")]
    pub ack_deadline: Duration,
    /// A cohort node whose agent reports it cannot fetch the artifact (the artifact service is
    /// down or unreachable, or the bytes arrive corrupted) gets this long instead of
    /// `ackDeadline`; then the fetch gate fails the step. The agent keeps retrying meanwhile.
    #[serde(with = "humantime_serde")]
    pub fetch_deadline: Duration,
    /// The share of cohort proxies that may NACK the new version, or not ACK it by
    /// `ackDeadline`, without failing it (they keep what they run). 0, the default, fails on
    /// any. For fleets that mix proxies that cannot run a filter with ones that can.
    pub max_reject_share: f64,
    /// A version published while another rolls out replaces it (the one in progress ends
    /// without a verdict) instead of waiting for it.
    pub supersede: bool,
    /// A cohort node that restarts (or drops its stream and comes back) within this time after
    /// receiving the new version counts against it.
    #[serde(with = "humantime_serde")]
    pub crash_window: Duration,
    /// How often the traffic gate looks.
    #[serde(with = "humantime_serde")]
    pub look_interval: Duration,
    /// How many consecutive failing traffic looks make a failure.
    pub failing_looks: u32,
    /// How long a step may stay inconclusive (too few samples) before `atDeadline` applies.
    #[serde(with = "humantime_serde")]
    pub step_deadline: Duration,
    /// What happens when a step stays inconclusive past its deadline.
    pub at_deadline: DeadlineAction,
    /// Requests seen before a node ACKed (plus this settle time) are not counted for the canary.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// A cohort node with no metrics for this long means the metrics feed is down: pause.
    #[serde(with = "humantime_serde")]
    pub metrics_stale_after: Duration,
    /// When the fleet is too small for a baseline cohort, the same nodes are compared with their
    /// own traffic over this long before the push.
    #[serde(with = "humantime_serde")]
    pub history_window: Duration,
    /// The traffic gate.
    pub traffic: TrafficPolicy,
}

/// One step: a cohort size and how long and how much traffic it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    /// An absolute number of proxies. Exactly one of `nodes` and `percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// A share of the connected fleet, rounded up, at least one proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// The least time the step lasts.
    #[serde(default, with = "humantime_serde")]
    pub min_duration: Duration,
    /// The least number of canary requests before the step may pass.
    #[serde(default)]
    pub min_requests: u64,
}

/// What to do with a step that stays inconclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadlineAction {
    /// Pause and alert; a person decides.
    Hold,
    /// Go on as if the step passed.
    Promote,
    /// Roll back.
    Rollback,
}

/// Thresholds of the traffic gate. Ratios are absolute differences (0.02 = two points).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    /// Below this many requests in either cohort a look is inconclusive.
    pub min_samples: u64,
    /// The z value of the Wilson score intervals (2.576 ≈ 99%).
    pub z: f64,
    /// The canary's 5xx ratio may exceed the baseline's by this much.
    pub max_5xx_increase: f64,
    /// A request slower than this counts as slow. Use an Envoy histogram bucket bound (ms):
    /// 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, ...
    #[serde(with = "humantime_serde")]
    pub slow_threshold: Duration,
    /// The canary's share of slow requests may exceed the baseline's by this much.
    pub max_slow_increase: f64,
    /// The canary's heartbeat ratio may fall below the baseline's by this much.
    pub max_heartbeat_drop: f64,
    /// A baseline whose 5xx ratio is above this is unhealthy: pause, do not judge.
    pub baseline_max_5xx: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            steps: vec![
                Step::nodes(1, Duration::from_secs(30), 100),
                Step::percent(25, Duration::from_secs(30), 200),
                Step::percent(100, Duration::from_secs(30), 200),
            ],
            bake: Duration::from_secs(60),
            ack_deadline: Duration::from_secs(10),
            fetch_deadline: Duration::from_secs(300),
            max_reject_share: 0.0,
            supersede: false,
            crash_window: Duration::from_secs(120),
            look_interval: Duration::from_secs(5),
            failing_looks: 3,
            step_deadline: Duration::from_secs(600),
            at_deadline: DeadlineAction::Hold,
            settle: Duration::from_secs(1),
            metrics_stale_after: Duration::from_secs(10),
            history_window: Duration::from_secs(60),
            traffic: TrafficPolicy::default(),
        }
    }
}

impl Default for TrafficPolicy {
    fn default() -> Self {
        Self {
            min_samples: 50,
            z: 2.576,
            max_5xx_increase: 0.02,
            slow_threshold: Duration::from_millis(250),
            max_slow_increase: 0.05,
            max_heartbeat_drop: 0.05,
            baseline_max_5xx: 0.2,
        }
    }
}

impl Step {
    /// A step of `count` proxies.
    pub fn nodes(count: u32, min_duration: Duration, min_requests: u64) -> Self {
        Self {
            nodes: Some(count),
            percent: None,
            min_duration,
            min_requests,
        }
    }

    /// A step of `percent` of the fleet.
    pub fn percent(percent: u32, min_duration: Duration, min_requests: u64) -> Self {
        Self {
            nodes: None,
            percent: Some(percent),
            min_duration,
            min_requests,
        }
    }

    /// How many of `fleet` proxies this step covers: at least one, at most all.
    pub fn cohort_size(&self, fleet: usize) -> usize {
        let wanted = match (self.nodes, self.percent) {
            (Some(nodes), _) => nodes as usize,
            (None, Some(percent)) => (fleet * percent as usize).div_ceil(100),
            (None, None) => fleet,
        };
        wanted.clamp(1, fleet.max(1)).min(fleet)
    }
}

impl Policy {
    /// Everything at once, gated only by acceptance (ACK/NACK), and a newer version replaces
    /// one still waiting for ACKs: what a plain ECDS push does, plus rollback on a NACK.
    pub fn immediate() -> Self {
        Self {
            steps: vec![Step::percent(100, Duration::ZERO, 0)],
            bake: Duration::ZERO,
            crash_window: Duration::ZERO,
            supersede: true,
            ..Self::default()
        }
    }

    /// Parses and validates a policy from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let policy: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("steps: at least one step is needed".into());
        }
        for (i, step) in self.steps.iter().enumerate() {
            match (step.nodes, step.percent) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!("steps[{i}]: give exactly one of nodes and percent"));
                }
                (Some(0), _) => return Err(format!("steps[{i}].nodes: must be at least 1")),
                (_, Some(p)) if p == 0 || p > 100 => {
                    return Err(format!("steps[{i}].percent: must be 1..=100, got {p}"));
                }
                _ => {}
            }
        }
        if self.failing_looks == 0 {
            return Err("failingLooks: must be at least 1".into());
        }
        let t = &self.traffic;
        for (field, value) in [
            ("maxRejectShare", self.max_reject_share),
            ("traffic.max5xxIncrease", t.max_5xx_increase),
            ("traffic.maxSlowIncrease", t.max_slow_increase),
            ("traffic.maxHeartbeatDrop", t.max_heartbeat_drop),
            ("traffic.baselineMax5xx", t.baseline_max_5xx),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{field}: must be within 0..=1, got {value}"));
            }
        }
        if !(t.z > 0.0 && t.z.is_finite()) {
            return Err(format!("traffic.z: must be positive, got {}", t.z));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
