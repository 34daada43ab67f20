//! The rollout state of every plugin ([`Rollouts`], owned by the engine) and the transitions
//! of a rollout: start, advance, promote, roll back, cancel, start the queued version. Each
//! changes state in memory and returns what is to be done as [`Effects`].

use std::collections::{BTreeMap, BTreeSet};

use super::cohort::choose;
use super::decide::{Gate, Stage, millis};
use super::effects::{Count, Effects};
use super::error::RolloutError;
use super::history::clean_spans;
use super::record::{Decision, PluginRecord, Quarantined, Release, Rollout};
use super::traffic::Totals;
use super::world::World;

/// How many cohort members a decision-log entry names; `canary_size` gives the whole count.
pub const LOGGED_NODES: usize = 50;

/// Every plugin's rollout record: last good, rollout in progress, queue, quarantine.
#[derive(Debug, Default)]
pub struct Rollouts {
    pub records: BTreeMap<String, PluginRecord>,
    /// Rollbacks whose proxies have not all ACKed the last good version yet.
    pub in_flight: Vec<RollbackInFlight>,
}

/// A rollback whose nodes have not all ACKed the last good version yet.
#[derive(Debug, Clone)]
pub struct RollbackInFlight {
    pub plugin: String,
    pub rollout: String,
    pub version: String,
    pub nodes: BTreeSet<String>,
    pub started_ms: u64,
}

/// A decision-log entry about `rollout`, before its sequence number is assigned.
pub fn decision(
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
        term: None,
    }
}

impl Rollouts {
    /// The quarantine entry of `version` of `plugin`, if it is quarantined. The one place
    /// that says whether a version may go out.
    pub fn quarantine_of(&self, plugin: &str, version: &str) -> Option<&Quarantined> {
        self.records.get(plugin)?.quarantine.get(version)
    }

    /// A copy of the rollout of `plugin` in progress.
    pub fn rollout(&self, plugin: &str) -> Option<Rollout> {
        self.records.get(plugin)?.rollout.clone()
    }

    /// Names of the plugins with a rollout in progress.
    pub fn in_progress(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|(_, p)| p.rollout.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The proxies a rollout in progress counts (pushed, canary, baseline): they are kept
    /// while it lasts, however long they are gone.
    pub fn counted_nodes(&self) -> BTreeSet<&String> {
        self.records
            .values()
            .filter_map(|p| p.rollout.as_ref())
            .flat_map(|r| r.pushed.keys().chain(&r.baseline).chain(&r.canary))
            .collect()
    }

    /// How many rollouts are in each stage (`step-1`, ..., `bake`, or `paused`).
    pub fn by_stage(&self) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for rollout in self.records.values().filter_map(|p| p.rollout.as_ref()) {
            let stage = match (rollout.paused.is_some(), rollout.stage) {
                (true, _) => "paused".to_string(),
                (false, Stage::Step(i)) => format!("step-{}", i + 1),
                (false, Stage::Bake) => "bake".to_string(),
            };
            *counts.entry(stage).or_insert(0) += 1;
        }
        counts
    }

    /// After `down_ms` the control plane was not running: every rollout's clocks move on by
    /// it, so its deadlines (ACK, step, bake) count only time it was watched.
    pub fn shift_clocks(&mut self, down_ms: u64, fx: &mut Effects) {
        for (name, record) in &mut self.records {
            let Some(rollout) = record.rollout.as_mut() else {
                continue;
            };
            rollout.stage_started_ms += down_ms;
            rollout.started_ms += down_ms;
            rollout.last_look_ms += down_ms;
            for at in rollout.pushed.values_mut() {
                *at += down_ms;
            }
            fx.save = true;
            tracing::info!(plugin = %name, rollout = %rollout.id, downtime_ms = down_ms,
                "rollout clocks re-armed: the downtime does not count against its deadlines");
        }
    }

    /// Puts `rollout` back as the one in progress for `plugin`, to be saved.
    pub fn store(&mut self, plugin: &str, rollout: Rollout, fx: &mut Effects) {
        if let Some(record) = self.records.get_mut(plugin) {
            record.rollout = Some(rollout);
        }
        fx.save = true;
    }

    /// Starts rolling `release` out: the first step's canary is chosen among the connected
    /// proxies (every one, for a first version) and served it.
    pub fn start(
        &mut self,
        world: &World<'_>,
        plugin: &str,
        release: Release,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let record = self.records.entry(plugin.to_string()).or_default();
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
        let policy = world.policy_for(plugin, &rollout);
        let connected = world.eligible_nodes(plugin, &rollout.to);
        let since = now_ms.saturating_sub(millis(policy.history_window));
        let spans = clean_spans(record, (since, now_ms), millis(policy.settle));
        for node in &connected {
            if let Some(signals) = world.signals.get(node) {
                let mut totals = Totals::default();
                for (from, to) in &spans {
                    totals += signals.totals(*from, *to, plugin);
                }
                rollout.history.insert(node.clone(), totals);
            }
        }
        let cohorts = choose(&rollout.id, &policy.steps[0], &connected, &BTreeSet::new());
        for node in &cohorts.canary {
            rollout.pushed.insert(node.clone(), now_ms);
        }
        rollout.canary = cohorts.canary;
        rollout.baseline = cohorts.baseline;
        let mut reason = match &rollout.from {
            Some(from) => format!("new version replaces {}", from.version),
            None => "first version: every proxy at once".to_string(),
        };
        if !rollout.to.signers.is_empty() {
            reason.push_str(&format!(
                "; signed by key {}",
                rollout.to.signers.join(", ")
            ));
        }
        fx.log(decision(plugin, &rollout, "start", reason, now_ms));
        fx.counts.push(Count::Started(plugin.to_string()));
        fx.serve(rollout.pushed.keys());
        fx.save = true;
        record.rollout = Some(rollout);
    }

    /// Moves to the next stage of the policy the rollout runs under: a bigger cohort, bake,
    /// or promotion.
    pub fn advance(
        &mut self,
        world: &World<'_>,
        plugin: &str,
        mut rollout: Rollout,
        reason: String,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let policy = world.policy_for(plugin, &rollout);
        let next = match rollout.stage {
            Stage::Step(i) if i + 1 < policy.steps.len() => Stage::Step(i + 1),
            Stage::Step(_) if !policy.bake.is_zero() => Stage::Bake,
            _ => return self.promote(world, plugin, rollout, reason, now_ms, fx),
        };
        fx.log(decision(plugin, &rollout, "advance", reason, now_ms));
        rollout.stage = next;
        rollout.stage_started_ms = now_ms;
        rollout.failing_looks = 0;
        rollout.last_look_ms = now_ms;
        if let Stage::Step(i) = next {
            let connected = world.eligible_nodes(plugin, &rollout.to);
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
        fx.serve(rollout.pushed.keys());
        self.store(plugin, rollout, fx);
    }

    /// The new version becomes the last good one; the queued version, if any, starts.
    pub fn promote(
        &mut self,
        world: &World<'_>,
        plugin: &str,
        rollout: Rollout,
        reason: String,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        fx.log(decision(plugin, &rollout, "promote", reason, now_ms));
        if let Some(record) = self.records.get_mut(plugin) {
            record.last_good = Some(rollout.to);
            record.rollout = None;
        }
        fx.save = true;
        fx.counts.push(Count::Promoted(plugin.to_string()));
        fx.serve_all = true;
        self.start_queued(world, plugin, now_ms, fx);
    }

    /// Puts the last good version back on every proxy that got the new one, and quarantines
    /// the new one (unless the fetch gate failed: the artifact never ran, so it may be
    /// published again once it can be fetched); `gate` says which gate failed and `reason` why.
    pub fn rollback(
        &mut self,
        world: &World<'_>,
        plugin: &str,
        rollout: Rollout,
        (gate, reason): (Gate, String),
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let mut entry = decision(plugin, &rollout, "rollback", reason.clone(), now_ms);
        entry.gate = Some(gate);
        if let Some(record) = self.records.get_mut(plugin) {
            record.rollout = None;
            record.rollbacks += 1;
            if gate != Gate::Fetch {
                let quarantined = Quarantined {
                    release: rollout.to.clone(),
                    reason: format!("{gate:?} gate: {reason}"),
                    at_ms: now_ms,
                    started_ms: Some(rollout.started_ms),
                };
                record
                    .quarantine
                    .insert(rollout.to.version.clone(), quarantined);
            }
        }
        fx.save = true;
        fx.alert(entry);
        fx.counts.push(Count::RolledBack(plugin.to_string(), gate));
        if let Some(from) = &rollout.from {
            self.in_flight.push(RollbackInFlight {
                plugin: plugin.to_string(),
                rollout: rollout.id.clone(),
                version: from.version.clone(),
                nodes: rollout.pushed.keys().cloned().collect(),
                started_ms: now_ms,
            });
        }
        fx.serve(rollout.pushed.keys());
        self.start_queued(world, plugin, now_ms, fx);
    }

    /// Ends the rollout without a verdict: every proxy goes back to the last good version,
    /// nothing is quarantined, and anything queued is dropped (the publisher changed its mind).
    pub fn cancel(&mut self, plugin: &str, reason: &str, now_ms: u64, fx: &mut Effects) {
        let Some(record) = self.records.get_mut(plugin) else {
            return;
        };
        let Some(rollout) = record.rollout.take() else {
            return;
        };
        record.queued = None;
        fx.save = true;
        fx.log(decision(
            plugin,
            &rollout,
            "cancel",
            reason.to_string(),
            now_ms,
        ));
        fx.serve(rollout.pushed.keys());
    }

    /// The plugin is gone (its build was deleted in folder mode): a rollout ends as
    /// [`Rollouts::cancel`] ends it, and no proxy is served the plugin any more. Its
    /// quarantine stays, so a bad version put back is still refused.
    pub fn remove(&mut self, plugin: &str, reason: &str, now_ms: u64, fx: &mut Effects) {
        self.cancel(plugin, reason, now_ms, fx);
        let Some(record) = self.records.get_mut(plugin) else {
            return;
        };
        record.queued = None;
        record.published = None;
        let Some(last_good) = record.last_good.take() else {
            return;
        };
        fx.save = true;
        fx.serve_all = true;
        fx.log(Decision {
            seq: 0,
            at_ms: now_ms,
            plugin: plugin.to_string(),
            rollout: String::new(),
            from: Some(last_good.version),
            to: String::new(),
            stage: None,
            action: "remove".into(),
            gate: None,
            reason: reason.to_string(),
            canary_size: 0,
            canary: Vec::new(),
            baseline: Vec::new(),
            canary_totals: None,
            baseline_totals: None,
            baseline_kind: None,
            term: None,
        });
    }

    fn start_queued(&mut self, world: &World<'_>, plugin: &str, now_ms: u64, fx: &mut Effects) {
        let Some(next) = self.records.get_mut(plugin).and_then(|p| p.queued.take()) else {
            return;
        };
        fx.save = true;
        if let Some(q) = self.quarantine_of(plugin, &next.version) {
            let refusal = RolloutError::quarantined(plugin, &next.version, &q.reason);
            tracing::warn!(plugin = %plugin, version = %next.version, error = %refusal,
                "queued version dropped");
            return;
        }
        self.start(world, plugin, next, now_ms, fx);
    }
}
