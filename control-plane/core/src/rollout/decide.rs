//! The rollout decision core: (policy, what the canary did, the clock) → verdict. Pure: no
//! I/O, no wall clock. The engine gathers the inputs and carries the verdict out.

use serde::{Deserialize, Serialize};

use super::policy::Policy;
use super::traffic::{Totals, TrafficLook, compare};

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage", content = "index")]
pub enum Stage {
    /// Step `n` of the policy (0-based).
    Step(usize),
    /// After the last step, before promotion.
    Bake,
}

/// One canary proxy, as far as the hard gates care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryNode {
    /// `node.id`.
    pub id: String,
    /// When it was handed the new version.
    pub pushed_at_ms: u64,
    /// Whether it ACKed the new version.
    pub acked: bool,
    /// Its NACK of the new version, if any.
    pub nack: Option<String>,
    /// Its agent's last failure to fetch the new version, if it has not ACKed it since.
    pub fetch_failure: Option<String>,
    /// It is behind `meshplug agent`: no answer yet means its module is being fetched, so it
    /// gets `fetchDeadline`, not `ackDeadline`, and running out of it fails the fetch gate.
    pub behind_agent: bool,
    /// When it restarted or reconnected after the push, if it did.
    pub restarted_at_ms: Option<u64>,
    /// `config_fail` and similar load-error counters moved since the push.
    pub load_errors: u64,
    /// When none of its listeners has a slot for the plugin: the slots they have (the ECDS
    /// names it asks for). It can never ACK then, and the reason says why.
    pub no_slot: Option<Vec<String>>,
}

impl CanaryNode {
    /// A proxy pushed at 1 000 ms with nothing against it: for tests of the gates, here and
    /// in the runtime.
    #[doc(hidden)]
    pub fn for_tests(id: &str, acked: bool) -> Self {
        Self {
            id: id.into(),
            pushed_at_ms: 1_000,
            acked,
            nack: None,
            fetch_failure: None,
            behind_agent: false,
            restarted_at_ms: None,
            load_errors: 0,
            no_slot: None,
        }
    }

    /// Whether its module is (or may still be) on its way through an agent: it has reported
    /// a fetch failure, or it is behind an agent and has not answered.
    pub fn fetching(&self) -> bool {
        self.fetch_failure.is_some() || self.behind_agent
    }
}

/// The traffic the canary and its comparison saw, for a look that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficInput {
    /// The canary since it settled on the new version.
    pub canary: Totals,
    /// The baseline cohort over the same time, or the canary's own history before the push.
    pub baseline: Totals,
    /// What the baseline is.
    pub baseline_kind: BaselineKind,
    /// Cohort proxies with no recent metrics.
    pub stale_nodes: Vec<String>,
}

/// What the canary is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// Other proxies on the last good version, over the same time.
    Cohort,
    /// The same proxies before the push.
    History,
}

/// Everything one decision reads.
#[derive(Debug, Clone)]
pub struct LookInput<'a> {
    /// The clock.
    pub now_ms: u64,
    /// The policy.
    pub policy: &'a Policy,
    /// The stage.
    pub stage: Stage,
    /// When the stage began.
    pub stage_started_ms: u64,
    /// The proxies running the new version.
    pub canary: &'a [CanaryNode],
    /// Set when a traffic look is due.
    pub traffic: Option<TrafficInput>,
    /// Consecutive failing traffic looks so far.
    pub failing_looks: u32,
    /// Paused: the hard gates still run; nothing advances.
    pub paused: bool,
}

/// Which gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// NACK, or no ACK in time.
    Acceptance,
    /// A proxy's agent could not fetch the artifact in time (the artifact is not at fault: it
    /// is not quarantined).
    Fetch,
    /// A load-error counter moved.
    Loaded,
    /// A canary proxy restarted.
    Liveness,
    /// 5xx, latency or heartbeat against the baseline.
    Traffic,
    /// The step stayed inconclusive past its deadline.
    Deadline,
    /// A person.
    Manual,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Keep going as is.
    Hold {
        /// Why nothing changes yet.
        reason: String,
    },
    /// The stage passed.
    Advance {
        /// Why.
        reason: String,
    },
    /// Put the last good version back.
    Rollback {
        /// The gate that failed.
        gate: Gate,
        /// Why.
        reason: String,
    },
    /// Stop judging and alert; never a rollback.
    Pause {
        /// Why.
        reason: String,
    },
}

/// A decision and the state it carries to the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// The verdict.
    pub verdict: Verdict,
    /// Consecutive failing traffic looks after this one.
    pub failing_looks: u32,
    /// The traffic look, when one was due.
    pub traffic: Option<TrafficLook>,
}

/// Decides. Hard gates first (acceptance, loaded, liveness), then traffic, then progress.
pub fn decide(input: &LookInput<'_>) -> Look {
    let hold = |verdict: Verdict| Look {
        verdict,
        failing_looks: input.failing_looks,
        traffic: None,
    };
    if let Some(verdict) = hard_gates(input) {
        return hold(verdict);
    }
    if let Some(waiting) = unacked(input) {
        return hold(Verdict::Hold {
            reason: format!("waiting for ACKs from {waiting}"),
        });
    }
    if input.paused {
        return hold(Verdict::Hold {
            reason: "paused".into(),
        });
    }
    let (min_duration, min_requests) = stage_needs(input.policy, input.stage);
    let needs_traffic = min_requests > 0;
    let Some(traffic) = &input.traffic else {
        // A failing streak is settled by looks: a bake does not pass between two of them.
        let verdict = if needs_traffic || input.failing_looks > 0 {
            Verdict::Hold {
                reason: format!(
                    "waiting for the next traffic look ({} failing so far)",
                    input.failing_looks
                ),
            }
        } else {
            progress(input, min_duration, None)
        };
        return hold(verdict);
    };
    if needs_traffic && !traffic.stale_nodes.is_empty() {
        return hold(Verdict::Pause {
            reason: format!(
                "metrics feed down: no recent metrics from {}",
                traffic.stale_nodes.join(", ")
            ),
        });
    }
    let look = compare(&input.policy.traffic, &traffic.canary, &traffic.baseline);
    let (verdict, failing_looks) = judge_traffic(input, traffic, &look, min_duration, min_requests);
    Look {
        verdict,
        failing_looks,
        traffic: Some(look),
    }
}

fn judge_traffic(
    input: &LookInput<'_>,
    traffic: &TrafficInput,
    look: &TrafficLook,
    min_duration: u64,
    min_requests: u64,
) -> (Verdict, u32) {
    let k = input.policy.failing_looks;
    match look {
        TrafficLook::Fail { reason } => {
            let failing = input.failing_looks + 1;
            let verdict = if failing >= k {
                Verdict::Rollback {
                    gate: Gate::Traffic,
                    reason: format!("{failing} failing looks in a row: {reason}"),
                }
            } else {
                Verdict::Hold {
                    reason: format!("failing look {failing} of {k}: {reason}"),
                }
            };
            (verdict, failing)
        }
        TrafficLook::BaselineUnhealthy { reason } if min_requests > 0 => (
            Verdict::Pause {
                reason: reason.clone(),
            },
            input.failing_looks,
        ),
        TrafficLook::Inconclusive { reason } if min_requests > 0 => {
            (deadline_or_hold(input, reason), input.failing_looks)
        }
        _ if traffic.canary.completed < min_requests => {
            let reason = format!(
                "{} of {min_requests} canary requests",
                traffic.canary.completed
            );
            (deadline_or_hold(input, &reason), input.failing_looks)
        }
        _ => (
            progress(input, min_duration, Some(traffic.baseline_kind)),
            0,
        ),
    }
}

fn hard_gates(input: &LookInput<'_>) -> Option<Verdict> {
    let policy = input.policy;
    let rollback = |gate, reason| Some(Verdict::Rollback { gate, reason });
    let late = |node: &CanaryNode| {
        !node.acked && input.now_ms.saturating_sub(node.pushed_at_ms) > deadline_of(policy, node)
    };
    let rejected: Vec<String> = input
        .canary
        .iter()
        .filter_map(|node| match &node.nack {
            Some(error) => Some(format!("{} NACKed: {error}", node.id)),
            None if late(node) && !node.fetching() => Some(match &node.no_slot {
                Some(slots) => format!(
                    "{} did not ACK within {:?}: none of its listeners has a slot for this \
                     plugin (its ECDS slots: {})",
                    node.id,
                    policy.ack_deadline,
                    slots.join(", ")
                ),
                None => format!("{} did not ACK within {:?}", node.id, policy.ack_deadline),
            }),
            None => None,
        })
        .collect();
    if let Some(reason) = over_share(input, &rejected) {
        return rollback(Gate::Acceptance, reason);
    }
    let unfetched: Vec<String> = input
        .canary
        .iter()
        .filter(|node| node.nack.is_none() && node.fetching() && late(node))
        .map(|node| {
            let why = node
                .fetch_failure
                .clone()
                .unwrap_or_else(|| "no answer from its agent".into());
            format!(
                "{} could not fetch it within {:?}: {why}",
                node.id, policy.fetch_deadline
            )
        })
        .collect();
    if let Some(reason) = over_share(input, &unfetched) {
        return rollback(Gate::Fetch, reason);
    }
    for node in input.canary {
        if node.load_errors > 0 {
            return rollback(
                Gate::Loaded,
                format!(
                    "{}: {} load errors since the push",
                    node.id, node.load_errors
                ),
            );
        }
        let window = node.pushed_at_ms..=node.pushed_at_ms + millis(policy.crash_window);
        if let Some(at) = node.restarted_at_ms.filter(|at| window.contains(at)) {
            return rollback(
                Gate::Liveness,
                format!(
                    "{} restarted {} ms after receiving the new version (crash window {:?})",
                    node.id,
                    at - node.pushed_at_ms,
                    policy.crash_window
                ),
            );
        }
    }
    None
}

/// The first of `failed` with how many of the cohort failed, when more than the policy's
/// share did.
fn over_share(input: &LookInput<'_>, failed: &[String]) -> Option<String> {
    let first = failed.first()?;
    let share = failed.len() as f64 / input.canary.len() as f64;
    if share <= input.policy.max_reject_share {
        return None;
    }
    let others = match failed.len() {
        1 => String::new(),
        n => format!(" ({n} of {} cohort proxies refused it)", input.canary.len()),
    };
    Some(format!("{first}{others}"))
}

/// How long `node` may take to ACK: the fetch deadline when its module comes through an
/// agent, the ACK deadline otherwise.
fn deadline_of(policy: &Policy, node: &CanaryNode) -> u64 {
    match node.fetching() {
        true => millis(policy.fetch_deadline),
        false => millis(policy.ack_deadline),
    }
}

fn unacked(input: &LookInput<'_>) -> Option<String> {
    let waiting: Vec<String> = input
        .canary
        .iter()
        .filter(|n| !n.acked && n.nack.is_none())
        .filter(|n| input.now_ms.saturating_sub(n.pushed_at_ms) <= deadline_of(input.policy, n))
        .map(|n| match (&n.fetch_failure, n.behind_agent) {
            (Some(failure), _) => format!("{} (fetch failed, retrying: {failure})", n.id),
            (None, true) => format!("{} (fetching)", n.id),
            (None, false) => n.id.clone(),
        })
        .collect();
    (!waiting.is_empty()).then(|| waiting.join(", "))
}

/// What `stage` asks for before it passes: (least duration in ms, least canary requests).
pub fn stage_needs(policy: &Policy, stage: Stage) -> (u64, u64) {
    match stage {
        Stage::Step(i) => policy
            .steps
            .get(i)
            .map_or((0, 0), |s| (millis(s.min_duration), s.min_requests)),
        Stage::Bake => (millis(policy.bake), 0),
    }
}

/// Whether the traffic gate looks during `stage`: a step that needs requests, or a bake.
pub fn looks_at_traffic(policy: &Policy, stage: Stage) -> bool {
    let (duration, requests) = stage_needs(policy, stage);
    requests > 0 || (stage == Stage::Bake && duration > 0)
}

fn progress(input: &LookInput<'_>, min_duration: u64, baseline: Option<BaselineKind>) -> Verdict {
    let elapsed = input.now_ms.saturating_sub(input.stage_started_ms);
    if elapsed < min_duration {
        return Verdict::Hold {
            reason: format!("{elapsed} of {min_duration} ms"),
        };
    }
    let against = match baseline {
        Some(BaselineKind::Cohort) => ", traffic no worse than the baseline cohort",
        Some(BaselineKind::History) => ", traffic no worse than before the push",
        None => "",
    };
    Verdict::Advance {
        reason: format!("{:?} passed after {elapsed} ms{against}", input.stage),
    }
}

fn deadline_or_hold(input: &LookInput<'_>, reason: &str) -> Verdict {
    let elapsed = input.now_ms.saturating_sub(input.stage_started_ms);
    if elapsed <= millis(input.policy.step_deadline) {
        return Verdict::Hold {
            reason: format!("inconclusive: {reason}"),
        };
    }
    let why = format!("inconclusive past the step deadline: {reason}");
    match input.policy.at_deadline {
        super::policy::DeadlineAction::Hold => Verdict::Pause { reason: why },
        super::policy::DeadlineAction::Promote => Verdict::Advance { reason: why },
        super::policy::DeadlineAction::Rollback => Verdict::Rollback {
            gate: Gate::Deadline,
            reason: why,
        },
    }
}

/// A duration in whole milliseconds.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
