//! How rollouts move on their own: each look reads the canary's acceptance, load errors,
//! restarts and traffic against the baseline ([`super::decide`]) and carries out the verdict;
//! proxies that connect mid-rollout join it or get a fresh ACK deadline. Pure steps over
//! [`Rollouts`]: they return [`Effects`] instead of saving, logging or serving.

use std::collections::{BTreeMap, BTreeSet};

use super::cohort::choose;
use super::decide::{
    BaselineKind, CanaryNode, Look, LookInput, Stage, TrafficInput, Verdict, decide,
    looks_at_traffic, millis,
};
use super::effects::{Count, Effects};
use super::health::{NodeLook, first_version_verdict, node_looks};
use super::lifecycle::{LOGGED_NODES, Rollouts, decision};
use super::policy::Policy;
use super::record::{Decision, Paused, Rollout};
use super::traffic::Totals;
use super::world::World;
use crate::nodes::Delivery;

/// How long after the control plane starts a proxy it has not heard from yet is given to come
/// back before its ACK deadline starts: Envoy retries a lost xDS stream with a jittered
/// exponential backoff of at most 30 s, plus a margin to connect.
pub const RECONNECT_GRACE_MS: u64 = 35_000;

/// Looks at every rollout; traffic looks only when `traffic` and one is due.
pub fn evaluate_all(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    now_ms: u64,
    traffic: bool,
    fx: &mut Effects,
) {
    for name in rollouts.in_progress() {
        evaluate(rollouts, world, &name, now_ms, traffic, fx);
    }
}

fn evaluate(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    plugin: &str,
    now_ms: u64,
    traffic: bool,
    fx: &mut Effects,
) {
    let Some(mut rollout) = rollouts.rollout(plugin) else {
        return;
    };
    let policy = world.policy_for(plugin, &rollout);
    if fill_cohorts(world, plugin, &mut rollout, &policy, now_ms, fx) {
        fx.serve(rollout.pushed.keys());
        rollouts.store(plugin, rollout.clone(), fx);
    }
    let canary = canary_nodes(world, plugin, &rollout);
    // A stage that needs no traffic (e.g. the `immediate` policy) is judged by the hard
    // gates alone.
    let due = traffic
        && looks_at_traffic(&policy, rollout.stage)
        && now_ms >= rollout.last_look_ms + millis(policy.look_interval);
    let traffic_input = due.then(|| traffic_input(world, plugin, &rollout, &policy, now_ms));
    let look = decide(&LookInput {
        now_ms,
        policy: &policy,
        stage: rollout.stage,
        stage_started_ms: rollout.stage_started_ms,
        canary: &canary,
        traffic: traffic_input.clone(),
        failing_looks: rollout.failing_looks,
        // An automatic pause (feed down, sick baseline) lifts itself when a look finds the
        // cause gone, so the looks go on; a person's pause stops them.
        paused: rollout.paused.as_ref().is_some_and(|p| p.manual),
    });
    if let Some(traffic) = &traffic_input {
        let node_look = NodeLook {
            plugin,
            rollout: &rollout,
            policy: &policy.traffic,
            traffic,
            window: canary_window(&rollout, &policy, now_ms),
            now_ms,
        };
        fx.health
            .extend(node_looks(&node_look, &canary, world.signals));
    }
    let judged = Judged {
        plugin,
        look,
        traffic: traffic_input,
        now_ms,
    };
    carry_out(rollouts, world, rollout, judged, fx);
}

/// A step whose canary or baseline is empty because its proxies were not connected when it
/// began takes them once they are: the canary first (the step starts over from then),
/// then the baseline. Returns whether the rollout changed.
fn fill_cohorts(
    world: &World<'_>,
    plugin: &str,
    rollout: &mut Rollout,
    policy: &Policy,
    now_ms: u64,
    fx: &mut Effects,
) -> bool {
    let Stage::Step(i) = rollout.stage else {
        return false;
    };
    let need_canary = rollout.pushed.is_empty();
    let need_baseline = rollout.baseline.is_empty() && rollout.from.is_some();
    if !(need_canary || need_baseline) || rollout.paused.as_ref().is_some_and(|p| p.manual) {
        return false;
    }
    let eligible = world.eligible_nodes(plugin, &rollout.to);
    let already: BTreeSet<String> = rollout.pushed.keys().cloned().collect();
    if eligible.len() <= already.len() {
        return false;
    }
    let Some(step) = policy.steps.get(i) else {
        return false;
    };
    let cohorts = choose(&rollout.id, step, &eligible, &already);
    let mut changed = None;
    if need_canary && !cohorts.canary.is_empty() {
        for node in &cohorts.canary {
            rollout.pushed.insert(node.clone(), now_ms);
        }
        rollout.canary = cohorts.canary;
        rollout.stage_started_ms = now_ms;
        rollout.last_look_ms = now_ms;
        rollout.failing_looks = 0;
        changed = Some("proxies connected: the canary is chosen and the step starts");
    }
    if rollout.baseline.is_empty() && !cohorts.baseline.is_empty() && rollout.from.is_some() {
        rollout.baseline = cohorts.baseline;
        changed = changed.or(Some("proxies connected: the baseline is chosen"));
    }
    let Some(reason) = changed else {
        return false;
    };
    if rollout.paused.take().is_some() {
        fx.log(decision(plugin, rollout, "resume", reason.into(), now_ms));
    }
    fx.log(decision(plugin, rollout, "cohort", reason.into(), now_ms));
    true
}

/// Each proxy handed the new version, as the hard gates see it.
pub fn canary_nodes(world: &World<'_>, plugin: &str, rollout: &Rollout) -> Vec<CanaryNode> {
    let to = rollout.to.version.as_str();
    rollout
        .pushed
        .iter()
        .map(|(id, pushed_at)| {
            let node = world.nodes.get(id);
            let signals = world.signals.get(id);
            // A proxy not seen since this process started could not answer us: it gets
            // Envoy's longest reconnect backoff before its ACK deadline starts (when it
            // connects, the deadline counts from then: see `rearm_unacked`). One seen and
            // gone again still counts from its push.
            let unseen = node.is_none_or(|n| !n.seen_this_process());
            let pushed_at_ms = match (unseen, world.opened_ms) {
                (true, Some(opened)) => (*pushed_at).max(opened + RECONNECT_GRACE_MS),
                _ => *pushed_at,
            };
            CanaryNode {
                id: id.clone(),
                pushed_at_ms,
                acked: node.and_then(|n| n.acked(plugin)) == Some(to),
                nack: node
                    .and_then(|n| n.last_nack(plugin))
                    .filter(|nack| nack.version == to)
                    .map(|nack| nack.error.clone()),
                fetch_failure: node
                    .and_then(|n| n.fetch_failure(plugin))
                    .filter(|failure| failure.version == to)
                    .map(|failure| failure.error.clone()),
                behind_agent: node.is_some_and(|n| n.delivery() == Delivery::Agent),
                restarted_at_ms: signals.and_then(|s| s.restart_after(*pushed_at)),
                load_errors: signals.map_or(0, |s| {
                    let earlier_nack = node
                        .and_then(|n| n.last_nack(plugin))
                        .filter(|nack| nack.version != to)
                        .map(|nack| nack.at_unix_ms);
                    s.load_errors_after(plugin, *pushed_at, earlier_nack)
                }),
                no_slot: node
                    .and_then(|n| n.slots.as_ref())
                    .filter(|slots| !slots.contains(plugin))
                    .map(|slots| slots.iter().cloned().collect()),
            }
        })
        .collect()
}

/// The flushes a look counts for the canary: from the stage's start plus the settle time,
/// up to now (`from_ms..to_ms`).
fn canary_window(rollout: &Rollout, policy: &Policy, now_ms: u64) -> (u64, u64) {
    (rollout.stage_started_ms + millis(policy.settle), now_ms + 1)
}

fn traffic_input(
    world: &World<'_>,
    plugin: &str,
    rollout: &Rollout,
    policy: &Policy,
    now_ms: u64,
) -> TrafficInput {
    let sum = |nodes: &mut dyn Iterator<Item = &String>, from: u64, to: u64| {
        let mut totals = Totals::default();
        for node in nodes {
            if let Some(signals) = world.signals.get(node) {
                totals += signals.totals(from, to, plugin);
            }
        }
        totals
    };
    let (from, to) = canary_window(rollout, policy, now_ms);
    let canary = sum(&mut rollout.pushed.keys(), from, to);
    let (baseline, baseline_kind) = if rollout.baseline.is_empty() {
        let mut totals = Totals::default();
        for node in rollout.pushed.keys() {
            totals += rollout.history.get(node).copied().unwrap_or_default();
        }
        (totals, BaselineKind::History)
    } else {
        let totals = sum(&mut rollout.baseline.iter(), from, to);
        (totals, BaselineKind::Cohort)
    };
    let stale_after = millis(policy.metrics_stale_after);
    // Not stale while the stage, or this process, is younger than the allowance.
    let cohort_started = rollout
        .stage_started_ms
        .max(world.opened_ms.unwrap_or(now_ms));
    let stale_nodes = rollout
        .pushed
        .keys()
        .chain(rollout.baseline.iter())
        .filter(|node| {
            let last = world.signals.get(*node).and_then(|s| s.last_seen_ms());
            now_ms > cohort_started + stale_after && last.is_none_or(|at| at + stale_after < now_ms)
        })
        .cloned()
        .collect();
    TrafficInput {
        canary,
        baseline,
        baseline_kind,
        stale_nodes,
    }
}

/// A look's verdict, with what it was judged on.
struct Judged<'a> {
    plugin: &'a str,
    look: Look,
    traffic: Option<TrafficInput>,
    now_ms: u64,
}

fn carry_out(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    mut rollout: Rollout,
    judged: Judged<'_>,
    fx: &mut Effects,
) {
    let Judged {
        plugin,
        look,
        traffic,
        now_ms,
    } = judged;
    let (decided, for_a_person) = first_version_verdict(&rollout, look.verdict);
    let mut changed = rollout.failing_looks != look.failing_looks;
    rollout.failing_looks = look.failing_looks;
    if let (Some(traffic), Some(verdict)) = (&traffic, &look.traffic) {
        rollout.last_look_ms = now_ms;
        changed = true;
        let mut entry = decision(plugin, &rollout, "look", format!("{verdict:?}"), now_ms);
        entry.canary_totals = Some(traffic.canary);
        entry.baseline_totals = Some(traffic.baseline);
        entry.baseline_kind = Some(traffic.baseline_kind);
        fx.log(entry);
        if !matches!(decided, Verdict::Pause { .. })
            && rollout.paused.as_ref().is_some_and(|p| !p.manual)
        {
            rollout.paused = None;
            let reason = "the cause of the pause cleared".into();
            fx.log(decision(plugin, &rollout, "resume", reason, now_ms));
        }
    }
    match decided {
        Verdict::Hold { .. } => {
            if changed {
                rollouts.store(plugin, rollout, fx);
            }
        }
        Verdict::Pause { reason } => {
            if rollout.paused.is_none() {
                rollout.paused = Some(Paused {
                    reason: reason.clone(),
                    manual: for_a_person,
                });
                fx.alert(decision(plugin, &rollout, "pause", reason, now_ms));
            }
            rollouts.store(plugin, rollout, fx);
        }
        Verdict::Advance { reason } => {
            rollouts.advance(world, plugin, rollout, reason, now_ms, fx);
        }
        Verdict::Rollback { gate, reason } => {
            rollouts.rollback(world, plugin, rollout, (gate, reason), now_ms, fx);
        }
    }
}

/// Promotes the rollout of `plugin` if every proxy it reached ACKed it and its stage asks
/// for nothing more (the last step, no traffic, no bake). Returns whether it did.
pub fn promote_if_settled(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    plugin: &str,
    now_ms: u64,
    fx: &mut Effects,
) -> bool {
    let Some(rollout) = rollouts.rollout(plugin) else {
        return false;
    };
    let policy = world.policy_for(plugin, &rollout);
    let last = Stage::Step(policy.steps.len().saturating_sub(1));
    let needs_nothing =
        rollout.stage == last && !looks_at_traffic(&policy, rollout.stage) && policy.bake.is_zero();
    let acked = !rollout.pushed.is_empty()
        && canary_nodes(world, plugin, &rollout)
            .iter()
            .all(|n| n.acked);
    if !(needs_nothing && acked) {
        return false;
    }
    let reason = "every proxy ACKed it before a newer version arrived".to_string();
    rollouts.promote(world, plugin, rollout, reason, now_ms, fx);
    true
}

/// Logs how long each rollback took once all its proxies ACKed the last good version.
pub fn finish_rollbacks(rollouts: &mut Rollouts, world: &World<'_>, now_ms: u64, fx: &mut Effects) {
    let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut rollouts.in_flight)
        .into_iter()
        .partition(|r| {
            r.nodes.iter().all(|n| {
                world.nodes.get(n).and_then(|node| node.acked(&r.plugin)) == Some(&r.version)
            })
        });
    rollouts.in_flight = pending;
    for rollback in done {
        let elapsed = now_ms.saturating_sub(rollback.started_ms);
        tracing::info!(plugin = %rollback.plugin, rollout = %rollback.rollout, elapsed_ms = elapsed,
            "rollback complete: every affected proxy ACKed the last good version");
        fx.counts
            .push(Count::RollbackSeconds(elapsed as f64 / 1000.0));
        fx.log(Decision {
            seq: 0,
            at_ms: now_ms,
            plugin: rollback.plugin,
            rollout: rollback.rollout,
            from: Some(rollback.version.clone()),
            to: rollback.version,
            stage: None,
            action: "rolled_back".into(),
            gate: None,
            reason: format!(
                "every affected proxy ACKed the last good version {elapsed} ms after the rollback"
            ),
            canary_size: rollback.nodes.len(),
            canary: rollback.nodes.into_iter().take(LOGGED_NODES).collect(),
            baseline: Vec::new(),
            canary_totals: None,
            baseline_totals: None,
            baseline_kind: None,
            term: None,
        });
    }
}

/// Whether `node` was handed a rollout's new version within that rollout's crash window.
pub fn in_crash_window(rollouts: &Rollouts, world: &World<'_>, node: &str, now_ms: u64) -> bool {
    rollouts.records.iter().any(|(name, p)| {
        let window = millis(world.plugin_policy(name).crash_window);
        p.rollout
            .as_ref()
            .is_some_and(|r| r.pushed.get(node).is_some_and(|at| now_ms <= at + window))
    })
}

/// A proxy that connects while a rollout has pushed it a version it has not ACKed is sent
/// that version again now: its ACK deadline counts from now.
pub fn rearm_unacked(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    node: &str,
    now_ms: u64,
    fx: &mut Effects,
) {
    let known = world.nodes.get(node);
    for (name, record) in &mut rollouts.records {
        let Some(rollout) = record.rollout.as_mut() else {
            continue;
        };
        let unacked = known.and_then(|n| n.acked(name)) != Some(rollout.to.version.as_str());
        if let Some(at) = rollout.pushed.get_mut(node).filter(|_| unacked) {
            *at = (*at).max(now_ms);
            fx.save_soon = true;
        }
    }
}

/// A proxy that connects during a rollout's last step, or during bake, joins it. Returns
/// whether it joined one.
pub fn join_full_rollouts(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    node: &str,
    now_ms: u64,
    fx: &mut Effects,
) -> bool {
    let envoy_version = world.envoy_version(node);
    let lasts: BTreeMap<String, usize> = rollouts
        .records
        .keys()
        .filter(|name| world.targets(name, node))
        .map(|name| {
            let last = world.plugin_policy(name).steps.len().saturating_sub(1);
            (name.clone(), last)
        })
        .collect();
    let mut joined = false;
    for (name, record) in &mut rollouts.records {
        let (Some(rollout), Some(&last)) = (record.rollout.as_mut(), lasts.get(name)) else {
            continue;
        };
        let full = rollout.from.is_none()
            || matches!(rollout.stage, Stage::Bake)
            || rollout.stage == Stage::Step(last);
        let runs_on = rollout.to.runs_on(envoy_version);
        if full && runs_on && !rollout.pushed.contains_key(node) {
            rollout.canary.insert(node.to_string());
            rollout.pushed.insert(node.to_string(), now_ms);
            joined = true;
        }
    }
    // Saved by the next tick: a proxy that joins and is lost in a crash joins again when it
    // reconnects.
    fx.save_soon |= joined;
    joined
}
