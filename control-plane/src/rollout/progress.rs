//! How the engine moves a rollout: start, look, advance, promote, roll back. Each change is
//! saved before the proxies are served it, and logged.

use std::collections::BTreeSet;

use super::cohort::choose;
use super::decide::{
    BaselineKind, CanaryNode, Gate, Look, LookInput, Stage, TrafficInput, Verdict, decide,
    looks_at_traffic, millis,
};
use super::engine::{Engine, RollbackInFlight};
use super::policy::Policy;
use super::state::{Decision, Paused, Quarantined, Release, Rollout};
use super::traffic::Totals;
use crate::Error;

/// How long after the control plane starts a proxy it has not heard from yet is given to come
/// back before its ACK deadline starts: Envoy retries a lost xDS stream with a jittered
/// exponential backoff of at most 30 s, plus a margin to connect.
pub(super) const RECONNECT_GRACE_MS: u64 = 35_000;

/// How many cohort members a decision-log entry names; `canary_size` gives the whole count.
const LOGGED_NODES: usize = 50;

/// A decision-log entry about `rollout`, before its sequence number is assigned.
pub(super) fn decision(
    plugin: &str,
    rollout: &Rollout,
    action: &str,
    reason: String,
    now_ms: u64,
) -> Decision {
    Decision {
        seq: 0,
        at_ms: now_ms,
        plugin: plugin.to_string(),
        rollout: rollout.id.clone(),
        from: rollout.from.as_ref().map(|r| r.version.clone()),
        to: rollout.to.version.clone(),
        stage: Some(rollout.stage),
        action: action.to_string(),
        gate: None,
        reason,
        canary_size: rollout.canary.len(),
        canary: rollout.canary.iter().take(LOGGED_NODES).cloned().collect(),
        baseline: rollout
            .baseline
            .iter()
            .take(LOGGED_NODES)
            .cloned()
            .collect(),
        canary_totals: None,
        baseline_totals: None,
        baseline_kind: None,
    }
}

impl Engine {
    /// Appends to the decision log and emits it as a structured event. A log that cannot be
    /// written is reported, never fatal: the decision is carried out anyway.
    pub(super) fn append(&mut self, mut entry: Decision) -> Decision {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        tracing::info!(target: "meshplug::decision", plugin = %entry.plugin, rollout = %entry.rollout,
            action = %entry.action, gate = ?entry.gate, stage = ?entry.stage, reason = %entry.reason,
            "rollout decision");
        if let Err(err) = self.files.append(&entry) {
            tracing::error!(error = %err, "writing the decision log");
        }
        entry
    }

    /// Raises an alert: a structured error event, a counter and the webhook.
    pub(super) fn alert(&mut self, entry: &Decision) {
        tracing::error!(target: "meshplug::alert", plugin = %entry.plugin, rollout = %entry.rollout,
            action = %entry.action, gate = ?entry.gate, reason = %entry.reason, "rollout alert");
        self.metrics.alert(&entry.plugin, &entry.action);
        if let Some(alerts) = &self.alerts {
            let _ = alerts.send(entry.clone());
        }
    }

    /// The policy a rollout runs under: a first version (nothing to fall back to) goes to all
    /// proxies at once, gated by acceptance, load and liveness only.
    fn policy_for(&self, plugin: &str, rollout: &Rollout) -> Policy {
        let policy = self.plugin_policy(plugin);
        if rollout.from.is_some() {
            return policy.clone();
        }
        Policy {
            steps: Policy::immediate().steps,
            bake: std::time::Duration::ZERO,
            ..policy.clone()
        }
    }

    pub(super) fn start_rollout(
        &mut self,
        plugin: &str,
        release: Release,
        now_ms: u64,
    ) -> Result<(), Error> {
        let record = self.plugins.entry(plugin.to_string()).or_default();
        let from = record.last_good.clone();
        let short = &release.sha256[..release.sha256.len().min(12)];
        let mut rollout = Rollout {
            id: format!("{plugin}-{short}-{now_ms}"),
            from,
            to: release,
            stage: Stage::Step(0),
            stage_started_ms: now_ms,
            started_ms: now_ms,
            paused: None,
            canary: BTreeSet::new(),
            baseline: BTreeSet::new(),
            pushed: Default::default(),
            failing_looks: 0,
            last_look_ms: now_ms,
            history: Default::default(),
        };
        let policy = self.policy_for(plugin, &rollout);
        let connected = self.eligible_nodes(plugin, &rollout.to);
        let since = now_ms.saturating_sub(millis(policy.history_window));
        for node in &connected {
            if let Some(signals) = self.signals.get(node) {
                rollout
                    .history
                    .insert(node.clone(), signals.totals(since, now_ms, plugin));
            }
        }
        let cohorts = choose(&rollout.id, &policy.steps[0], &connected, &BTreeSet::new());
        for node in &cohorts.canary {
            rollout.pushed.insert(node.clone(), now_ms);
        }
        rollout.canary = cohorts.canary;
        rollout.baseline = cohorts.baseline;
        let reason = match &rollout.from {
            Some(from) => format!("new version replaces {}", from.version),
            None => "first version: every proxy at once".to_string(),
        };
        let entry = decision(plugin, &rollout, "start", reason, now_ms);
        let pushed: Vec<String> = rollout.pushed.keys().cloned().collect();
        self.plugins.entry(plugin.to_string()).or_default().rollout = Some(rollout);
        self.save_plugins()?;
        self.append(entry);
        self.metrics.started(plugin);
        for node in pushed {
            self.sync_node(&node);
        }
        Ok(())
    }

    /// Looks at every rollout; traffic looks only when `traffic` and one is due.
    pub(super) fn evaluate_all(&mut self, now_ms: u64, traffic: bool) {
        let names: Vec<String> = self
            .plugins
            .iter()
            .filter(|(_, p)| p.rollout.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Err(err) = self.evaluate(&name, now_ms, traffic) {
                tracing::error!(plugin = %name, error = %err, "rollout step failed");
            }
        }
    }

    fn evaluate(&mut self, plugin: &str, now_ms: u64, traffic: bool) -> Result<(), Error> {
        let Some(mut rollout) = self.plugins.get(plugin).and_then(|p| p.rollout.clone()) else {
            return Ok(());
        };
        let policy = self.policy_for(plugin, &rollout);
        if self.fill_cohorts(plugin, &mut rollout, &policy, now_ms) {
            let pushed: Vec<String> = rollout.pushed.keys().cloned().collect();
            self.store_rollout(plugin, rollout.clone())?;
            for node in pushed {
                self.sync_node(&node);
            }
        }
        let canary = self.canary_nodes(plugin, &rollout);
        // A stage that needs no traffic (e.g. the `immediate` policy) is judged by the hard
        // gates alone.
        let due = traffic
            && looks_at_traffic(&policy, rollout.stage)
            && now_ms >= rollout.last_look_ms + millis(policy.look_interval);
        let traffic_input = due.then(|| self.traffic_input(plugin, &rollout, &policy, now_ms));
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
        self.apply(plugin, rollout, &policy, look, traffic_input, now_ms)
    }

    /// A step whose canary or baseline is empty because its proxies were not connected when it
    /// began takes them once they are: the canary first (the step starts over from then),
    /// then the baseline. Returns whether the rollout changed.
    fn fill_cohorts(
        &mut self,
        plugin: &str,
        rollout: &mut Rollout,
        policy: &Policy,
        now_ms: u64,
    ) -> bool {
        let Stage::Step(i) = rollout.stage else {
            return false;
        };
        let need_canary = rollout.pushed.is_empty();
        let need_baseline = rollout.baseline.is_empty() && rollout.from.is_some();
        if !(need_canary || need_baseline) || rollout.paused.as_ref().is_some_and(|p| p.manual) {
            return false;
        }
        let eligible = self.eligible_nodes(plugin, &rollout.to);
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
            let entry = decision(plugin, rollout, "resume", reason.into(), now_ms);
            self.append(entry);
        }
        let entry = decision(plugin, rollout, "cohort", reason.into(), now_ms);
        self.append(entry);
        true
    }

    fn canary_nodes(&self, plugin: &str, rollout: &Rollout) -> Vec<CanaryNode> {
        let to = &rollout.to.version;
        rollout
            .pushed
            .iter()
            .map(|(id, pushed_at)| {
                let record = self.nodes.get(id);
                let signals = self.signals.get(id);
                // A proxy not seen since this process started could not answer us: it gets
                // Envoy's longest reconnect backoff before its ACK deadline starts (when it
                // connects, the deadline counts from then: see `rearm_unacked`). One seen
                // and gone again still counts from its push.
                let pushed_at_ms = match (self.connected.get(id), self.opened_ms) {
                    (None, Some(opened)) => (*pushed_at).max(opened + RECONNECT_GRACE_MS),
                    _ => *pushed_at,
                };
                CanaryNode {
                    id: id.clone(),
                    pushed_at_ms,
                    acked: record.and_then(|r| r.acked.get(plugin)) == Some(to),
                    nack: record
                        .and_then(|r| r.last_nack.get(plugin))
                        .filter(|(version, _)| version == to)
                        .map(|(_, error)| error.clone()),
                    restarted_at_ms: signals.and_then(|s| s.restart_after(*pushed_at)),
                    load_errors: signals.map_or(0, |s| s.load_errors_since(plugin, *pushed_at)),
                }
            })
            .collect()
    }

    fn traffic_input(
        &self,
        plugin: &str,
        rollout: &Rollout,
        policy: &Policy,
        now_ms: u64,
    ) -> TrafficInput {
        let sum = |nodes: &mut dyn Iterator<Item = &String>, from: u64, to: u64| {
            let mut totals = Totals::default();
            for node in nodes {
                if let Some(signals) = self.signals.get(node) {
                    totals += signals.totals(from, to, plugin);
                }
            }
            totals
        };
        let from = rollout.stage_started_ms + millis(policy.settle);
        let canary = sum(&mut rollout.pushed.keys(), from, now_ms + 1);
        let (baseline, baseline_kind) = if rollout.baseline.is_empty() {
            let mut totals = Totals::default();
            for node in rollout.pushed.keys() {
                totals += rollout.history.get(node).copied().unwrap_or_default();
            }
            (totals, BaselineKind::History)
        } else {
            (
                sum(&mut rollout.baseline.iter(), from, now_ms + 1),
                BaselineKind::Cohort,
            )
        };
        let stale_after = millis(policy.metrics_stale_after);
        // Not stale while the stage, or this process, is younger than the allowance.
        let cohort_started = rollout
            .stage_started_ms
            .max(self.opened_ms.unwrap_or(now_ms));
        let stale_nodes = rollout
            .pushed
            .keys()
            .chain(rollout.baseline.iter())
            .filter(|node| {
                let last = self.signals.get(*node).and_then(|s| s.last_seen_ms());
                now_ms > cohort_started + stale_after
                    && last.is_none_or(|at| at + stale_after < now_ms)
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

    fn apply(
        &mut self,
        plugin: &str,
        mut rollout: Rollout,
        policy: &Policy,
        look: Look,
        traffic: Option<TrafficInput>,
        now_ms: u64,
    ) -> Result<(), Error> {
        let mut changed = rollout.failing_looks != look.failing_looks;
        rollout.failing_looks = look.failing_looks;
        if let (Some(traffic), Some(verdict)) = (&traffic, &look.traffic) {
            rollout.last_look_ms = now_ms;
            changed = true;
            let mut entry = decision(plugin, &rollout, "look", format!("{verdict:?}"), now_ms);
            entry.canary_totals = Some(traffic.canary);
            entry.baseline_totals = Some(traffic.baseline);
            entry.baseline_kind = Some(traffic.baseline_kind);
            self.append(entry);
            if !matches!(look.verdict, Verdict::Pause { .. })
                && rollout.paused.as_ref().is_some_and(|p| !p.manual)
            {
                rollout.paused = None;
                let entry = decision(
                    plugin,
                    &rollout,
                    "resume",
                    "the cause of the pause cleared".into(),
                    now_ms,
                );
                self.append(entry);
            }
        }
        match look.verdict {
            Verdict::Hold { .. } => {
                if changed {
                    self.store_rollout(plugin, rollout)?;
                }
                Ok(())
            }
            Verdict::Pause { reason } => {
                if rollout.paused.is_none() {
                    rollout.paused = Some(Paused {
                        reason: reason.clone(),
                        manual: false,
                    });
                    let entry = self.append(decision(plugin, &rollout, "pause", reason, now_ms));
                    self.alert(&entry);
                }
                self.store_rollout(plugin, rollout)
            }
            Verdict::Advance { reason } => self.advance(plugin, rollout, policy, reason, now_ms),
            Verdict::Rollback { gate, reason } => {
                self.rollback(plugin, rollout, gate, reason, now_ms)
            }
        }
    }

    fn store_rollout(&mut self, plugin: &str, rollout: Rollout) -> Result<(), Error> {
        if let Some(record) = self.plugins.get_mut(plugin) {
            record.rollout = Some(rollout);
        }
        self.save_plugins()
    }

    /// Moves to the next stage: a bigger cohort, bake, or promotion.
    pub(super) fn advance(
        &mut self,
        plugin: &str,
        mut rollout: Rollout,
        policy: &Policy,
        reason: String,
        now_ms: u64,
    ) -> Result<(), Error> {
        let next = match rollout.stage {
            Stage::Step(i) if i + 1 < policy.steps.len() => Stage::Step(i + 1),
            Stage::Step(_) if !policy.bake.is_zero() => Stage::Bake,
            _ => return self.promote(plugin, rollout, reason, now_ms),
        };
        let entry = decision(plugin, &rollout, "advance", reason, now_ms);
        self.append(entry);
        rollout.stage = next;
        rollout.stage_started_ms = now_ms;
        rollout.failing_looks = 0;
        rollout.last_look_ms = now_ms;
        if let Stage::Step(i) = next {
            let connected = self.eligible_nodes(plugin, &rollout.to);
            let already: BTreeSet<String> = rollout.pushed.keys().cloned().collect();
            let cohorts = choose(&rollout.id, &policy.steps[i], &connected, &already);
            for node in &cohorts.canary {
                rollout.pushed.entry(node.clone()).or_insert(now_ms);
            }
            rollout.canary = cohorts.canary;
            rollout.baseline = cohorts.baseline;
        } else {
            rollout.baseline.clear();
        }
        let nodes: Vec<String> = rollout.pushed.keys().cloned().collect();
        self.store_rollout(plugin, rollout)?;
        for node in nodes {
            self.sync_node(&node);
        }
        Ok(())
    }

    /// The new version becomes the last good one.
    pub(super) fn promote(
        &mut self,
        plugin: &str,
        rollout: Rollout,
        reason: String,
        now_ms: u64,
    ) -> Result<(), Error> {
        let entry = decision(plugin, &rollout, "promote", reason, now_ms);
        if let Some(record) = self.plugins.get_mut(plugin) {
            record.last_good = Some(rollout.to.clone());
            record.rollout = None;
        }
        self.save_plugins()?;
        self.append(entry);
        self.metrics.promoted(plugin);
        self.sync_all();
        self.start_queued(plugin, now_ms)
    }

    /// Puts the last good version back on every proxy that got the new one, and quarantines
    /// the new one.
    pub(super) fn rollback(
        &mut self,
        plugin: &str,
        rollout: Rollout,
        gate: Gate,
        reason: String,
        now_ms: u64,
    ) -> Result<(), Error> {
        let mut entry = decision(plugin, &rollout, "rollback", reason.clone(), now_ms);
        entry.gate = Some(gate);
        if let Some(record) = self.plugins.get_mut(plugin) {
            record.rollout = None;
            record.rollbacks += 1;
            record.quarantine.insert(
                rollout.to.version.clone(),
                Quarantined {
                    release: rollout.to.clone(),
                    reason: format!("{gate:?} gate: {reason}"),
                    at_ms: now_ms,
                },
            );
        }
        self.save_plugins()?;
        let entry = self.append(entry);
        self.metrics.rolled_back(plugin, gate);
        self.alert(&entry);
        if let Some(from) = &rollout.from {
            self.rollbacks_in_flight.push(RollbackInFlight {
                plugin: plugin.to_string(),
                rollout: rollout.id.clone(),
                version: from.version.clone(),
                nodes: rollout.pushed.keys().cloned().collect(),
                started_ms: now_ms,
            });
        }
        for node in rollout.pushed.keys() {
            self.sync_node(node);
        }
        self.start_queued(plugin, now_ms)
    }

    /// Promotes the rollout of `plugin` if every proxy it reached ACKed it and its stage asks
    /// for nothing more (the last step, no traffic, no bake). Returns whether it did.
    pub(super) fn promote_if_settled(&mut self, plugin: &str, now_ms: u64) -> Result<bool, Error> {
        let Some(rollout) = self.plugins.get(plugin).and_then(|p| p.rollout.clone()) else {
            return Ok(false);
        };
        let policy = self.policy_for(plugin, &rollout);
        let last = Stage::Step(policy.steps.len().saturating_sub(1));
        let needs_nothing = rollout.stage == last
            && !looks_at_traffic(&policy, rollout.stage)
            && policy.bake.is_zero();
        let acked = !rollout.pushed.is_empty()
            && self.canary_nodes(plugin, &rollout).iter().all(|n| n.acked);
        if !(needs_nothing && acked) {
            return Ok(false);
        }
        let reason = "every proxy ACKed it before a newer version arrived".to_string();
        self.promote(plugin, rollout, reason, now_ms)?;
        Ok(true)
    }

    /// Ends the rollout without a verdict: every proxy goes back to the last good version,
    /// nothing is quarantined, and anything queued is dropped (the publisher changed its mind).
    /// Returns the proxies that had the cancelled version; the caller serves them.
    pub(super) fn cancel_rollout(
        &mut self,
        plugin: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Vec<String>, Error> {
        let Some(record) = self.plugins.get_mut(plugin) else {
            return Ok(Vec::new());
        };
        let Some(rollout) = record.rollout.take() else {
            return Ok(Vec::new());
        };
        record.queued = None;
        self.save_plugins()?;
        self.append(decision(
            plugin,
            &rollout,
            "cancel",
            reason.to_string(),
            now_ms,
        ));
        Ok(rollout.pushed.into_keys().collect())
    }

    fn start_queued(&mut self, plugin: &str, now_ms: u64) -> Result<(), Error> {
        let Some(next) = self.plugins.get_mut(plugin).and_then(|p| p.queued.take()) else {
            return Ok(());
        };
        if self.quarantined(plugin, &next.version).is_some() {
            tracing::warn!(plugin = %plugin, version = %next.version, "queued version is quarantined; dropped");
            return self.save_plugins();
        }
        self.start_rollout(plugin, next, now_ms)
    }

    /// Logs how long each rollback took once all its proxies ACKed the last good version.
    pub(super) fn finish_rollbacks(&mut self, now_ms: u64) {
        let nodes = &self.nodes;
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.rollbacks_in_flight)
            .into_iter()
            .partition(|r| {
                r.nodes.iter().all(|n| {
                    nodes.get(n).and_then(|rec| rec.acked.get(&r.plugin)) == Some(&r.version)
                })
            });
        self.rollbacks_in_flight = pending;
        for rollback in done {
            let elapsed = now_ms.saturating_sub(rollback.started_ms);
            tracing::info!(plugin = %rollback.plugin, rollout = %rollback.rollout, elapsed_ms = elapsed,
                "rollback complete: every affected proxy ACKed the last good version");
            self.metrics.rollback_seconds(elapsed as f64 / 1000.0);
            self.append(Decision {
                seq: 0,
                at_ms: now_ms,
                plugin: rollback.plugin,
                rollout: rollback.rollout,
                from: Some(rollback.version.clone()),
                to: rollback.version,
                stage: None,
                action: "rolled_back".into(),
                gate: None,
                reason: format!("every affected proxy ACKed the last good version {elapsed} ms after the rollback"),
                canary_size: rollback.nodes.len(),
                canary: rollback.nodes.into_iter().take(LOGGED_NODES).collect(),
                baseline: Vec::new(),
                canary_totals: None,
                baseline_totals: None,
                baseline_kind: None,
            });
        }
    }
}
