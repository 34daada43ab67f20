//! The rollout engine: the I/O shell around the pure rollout steps. It owns the parts of the
//! rollout state, each holding its own data: the [`Rollouts`] (every plugin's record), the
//! node model ([`Nodes`]), the health signals, the manifests' [`Placement`] and the
//! `Serving` of snapshots. Inputs (xDS events, stats flushes, releases, commands, ticks)
//! come in as method calls; the steps return [`Effects`], and `Engine::commit` applies them
//! in the one order: persist, log, alert, re-serve.
//!
//! Every proxy is served from its own snapshot group (its node id), so a canary gets a version
//! the rest of the fleet does not. All methods take the clock as an argument.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use meshplug_core::nodes::{Delivery, Node, NodeEvent, Nodes};
use tokio::sync::mpsc;
use xds::{NodeInfo, SnapshotCache, XdsEvent, type_url};

use translate::{filters, identity, refusal};

use meshplug_core::rollout::commands::{self, Command};
use meshplug_core::rollout::effects::{Count, Effects};
use meshplug_core::rollout::lifecycle::Rollouts;
use meshplug_core::rollout::placement::Placement;
use meshplug_core::rollout::policy::Policy;
use meshplug_core::rollout::progress::{self, evaluate_all};
use meshplug_core::rollout::releases::{self, ReleaseOutcome};
use meshplug_core::rollout::signals::{FlushSample, NodeSignals};
use meshplug_core::rollout::world::World;

use super::metrics::RolloutMetrics;
use super::serving::{Serving, chains_for, desired_for};
#[cfg(test)]
use super::state::PluginRecord;
use super::state::{Decision, Release, RolloutStore};
use crate::Error;

/// The read-only view the steps get, borrowing the engine's parts field by field (so
/// [`Engine::rollouts`] stays free to change).
macro_rules! world {
    ($engine:expr) => {
        World {
            policy: &$engine.policy,
            placement: &$engine.placement,
            nodes: &$engine.nodes,
            signals: &$engine.signals,
            opened_ms: $engine.clock.opened_ms,
        }
    };
}

/// When things last happened, for what runs at most so often.
#[derive(Debug, Default)]
struct Clock {
    /// The first clock reading this process saw.
    opened_ms: Option<u64>,
    /// An ACK or a join happened since the last look: the next tick looks at once.
    look_soon: bool,
    /// When the `alive` mark was last written.
    alive_marked_ms: Option<u64>,
    /// When `nodes.json` was last written.
    nodes_saved_ms: u64,
}

/// The rollout engine. Lock it behind a mutex; every input is a method call.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    store: Box<dyn RolloutStore>,
    rollouts: Rollouts,
    nodes: Nodes,
    signals: HashMap<String, NodeSignals>,
    placement: Placement,
    serving: Serving,
    metrics: Arc<RolloutMetrics>,
    alerts: Option<mpsc::UnboundedSender<Decision>>,
    next_seq: u64,
    clock: Clock,
    /// Effects not applied yet: saving the state failed, and nothing after it happens before
    /// it is saved (the next tick tries again).
    pending: Effects,
    /// Whether it decides (see [`Role`]).
    role: Role,
    /// A follower's stats flushes for the leader.
    relay: replica::Relay,
    /// The manifests in force, not saved yet: saved before the next records, so followers
    /// place what this engine placed.
    unsaved_catalog: Option<crate::catalog::CatalogRecord>,
}

impl Engine {
    /// Loads the state from `store` and serves it into `cache`.
    pub fn open(
        policy: Policy,
        store: impl RolloutStore + 'static,
        cache: Arc<SnapshotCache>,
        metrics: Arc<RolloutMetrics>,
        alerts: Option<mpsc::UnboundedSender<Decision>>,
    ) -> Result<Self, Error> {
        let records = store.load_plugins()?;
        let nodes = Nodes::restore(store.load_nodes()?);
        let next_seq = store.last_seq() + 1;
        for (name, plugin) in &records {
            if let Some(rollout) = &plugin.rollout {
                tracing::info!(plugin = %name, rollout = %rollout.id, stage = ?rollout.stage,
                    "resuming rollout from saved state");
            }
        }
        Ok(Self {
            policy,
            store: Box::new(store),
            rollouts: Rollouts {
                records,
                in_flight: Vec::new(),
            },
            nodes,
            signals: HashMap::new(),
            placement: Placement::default(),
            serving: Serving::new(cache),
            metrics,
            alerts,
            next_seq,
            clock: Clock::default(),
            pending: Effects::default(),
            role: Role::Sole,
            relay: replica::Relay::default(),
            unsaved_catalog: None,
        })
    }

    /// Re-arms the clocks of the rollouts loaded from disk, at the first clock reading after a
    /// start: every deadline (ACK, step, bake) counts time the control plane was up and
    /// watching, so the downtime since it was last alive is added to each rollout's
    /// timestamps. Call it once, right after [`Engine::open`].
    pub fn resume_clocks(&mut self, now_ms: u64) {
        self.clock.opened_ms.get_or_insert(now_ms);
        let Some(alive) = self.store.last_alive_ms() else {
            return;
        };
        let down = now_ms.saturating_sub(alive);
        if down == 0 {
            return;
        }
        let mut fx = Effects::default();
        self.rollouts.shift_clocks(down, &mut fx);
        self.commit_logged(fx, "saving re-armed rollout state");
        // Marked at once: a crash before the next tick must not count this downtime twice.
        self.mark_alive(now_ms);
    }

    /// Saves the node model now (on shutdown).
    pub fn save_nodes(&mut self) -> Result<(), Error> {
        self.store.save_nodes(self.nodes.saved())?;
        self.nodes.mark_saved();
        Ok(())
    }

    /// A new version of `plugin` passed ingest: start a rollout, or queue it behind the one in
    /// progress. A quarantined version is refused.
    pub fn release(
        &mut self,
        plugin: &str,
        release: Release,
        now_ms: u64,
    ) -> Result<ReleaseOutcome, Error> {
        self.must_decide("publishing a release")?;
        let mut fx = Effects::default();
        let outcome = self.publish(plugin, release, now_ms, &mut fx);
        self.commit(fx)?;
        outcome
    }

    /// Takes `release` of `plugin` in from ingest and counts it as published.
    fn publish(
        &mut self,
        plugin: &str,
        release: Release,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<ReleaseOutcome, Error> {
        let version = release.version.clone();
        let world = world!(self);
        let outcome = releases::release(&mut self.rollouts, &world, plugin, release, now_ms, fx)?;
        let record = self.rollouts.records.entry(plugin.to_string()).or_default();
        record.published = Some(version);
        record.publishes += 1;
        fx.save = true;
        Ok(outcome)
    }

    /// Carries out `command` for `plugin`; says what was done.
    pub fn command(
        &mut self,
        plugin: &str,
        command: Command,
        now_ms: u64,
    ) -> Result<String, Error> {
        self.must_decide("a rollout control")?;
        let mut fx = Effects::default();
        let world = world!(self);
        let done = commands::command(&mut self.rollouts, &world, plugin, command, now_ms, &mut fx);
        self.commit(fx)?;
        Ok(done?)
    }

    /// A proxy opened an ADS stream: decide its versions before it is served, and return the
    /// snapshot group it is served from. A proxy that dropped its stream and came back within
    /// a rollout's crash window counts as a restart against the new version; it is served the
    /// last good version.
    pub fn on_connect(&mut self, node: &NodeInfo, now_ms: u64) -> String {
        self.clock.opened_ms.get_or_insert(now_ms);
        let came_back = self.nodes.connect(&identity(node), now_ms);
        let mut fx = Effects::default();
        if !self.decides() {
            // The leader learns of it from this replica's published nodes.
            fx.serve.insert(node.id.clone());
            self.commit_logged(fx, "serving a proxy that connected");
            return node.id.clone();
        }
        let world = world!(self);
        if came_back && progress::in_crash_window(&self.rollouts, &world, &node.id, now_ms) {
            tracing::warn!(node = %node.id, "proxy came back within a crash window: counted as a restart");
            self.signals
                .entry(node.id.clone())
                .or_default()
                .note_restart(now_ms);
            // Decided now, so the proxy is served the last good version from its first
            // response.
            let world = world!(self);
            evaluate_all(&mut self.rollouts, &world, now_ms, false, &mut fx);
        }
        let world = world!(self);
        progress::rearm_unacked(&mut self.rollouts, &world, &node.id, now_ms, &mut fx);
        if progress::join_full_rollouts(&mut self.rollouts, &world, &node.id, now_ms, &mut fx) {
            self.clock.look_soon = true;
        }
        fx.serve.insert(node.id.clone());
        // If saving fails, the proxy is served with everything else once the state is saved.
        self.commit_logged(fx, "serving a proxy that connected");
        node.id.clone()
    }

    /// Follows one xDS stream event: the node model takes it (translated at this edge), and a
    /// NACK is judged at once.
    pub fn on_event(&mut self, event: &XdsEvent, now_ms: u64) {
        let id = event.node().id.as_str();
        match event {
            XdsEvent::StreamClosed { .. } => self.nodes.disconnect(id, now_ms),
            XdsEvent::Subscribed {
                type_url: t, names, ..
            } if t == type_url::EXTENSION_CONFIG => {
                self.nodes.set_slots(id, names.iter().cloned().collect());
            }
            XdsEvent::Sent {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                self.nodes
                    .apply(id, &NodeEvent::Sent(filters(resources)), now_ms);
            }
            XdsEvent::Ack {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                self.nodes
                    .apply(id, &NodeEvent::Acked(filters(resources)), now_ms);
                self.clock.look_soon = true;
            }
            XdsEvent::Nack {
                type_url: t,
                resources,
                error,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                self.nodes.apply(id, &refusal(resources, error), now_ms);
                if !self.decides() {
                    return;
                }
                let mut fx = Effects::default();
                let world = world!(self);
                evaluate_all(&mut self.rollouts, &world, now_ms, false, &mut fx);
                self.commit_logged(fx, "judging a NACK");
            }
            _ => {}
        }
    }

    /// Records one stats flush from a proxy.
    pub fn on_metrics(&mut self, node: &str, sample: &FlushSample, now_ms: u64) {
        let slow_ms = self.policy.traffic.slow_threshold.as_secs_f64() * 1000.0;
        for filter in sample.reloads.keys() {
            if !sample.load_errors.contains_key(filter) {
                self.nodes.reloaded(node, filter, now_ms);
            }
        }
        let restarted = self
            .signals
            .entry(node.to_string())
            .or_default()
            .record(now_ms, sample, slow_ms);
        if !self.decides() {
            self.relay.push(replica::RelayedFlush {
                node: node.to_string(),
                at_ms: now_ms,
                sample: sample.clone(),
            });
            return;
        }
        // Hard-gate signals are judged at once; traffic waits for its look.
        if !sample.load_errors.is_empty() || restarted {
            let mut fx = Effects::default();
            let world = world!(self);
            evaluate_all(&mut self.rollouts, &world, now_ms, false, &mut fx);
            self.commit_logged(fx, "judging a stats flush");
        }
    }

    /// Runs due traffic looks, applies what is pending, and saves the node model at most once
    /// a second.
    pub fn tick(&mut self, now_ms: u64) {
        self.clock.opened_ms.get_or_insert(now_ms);
        if !self.decides() {
            self.save_nodes_due(now_ms);
            return;
        }
        let mut fx = Effects::default();
        let world = world!(self);
        if std::mem::take(&mut self.clock.look_soon) {
            progress::finish_rollbacks(&mut self.rollouts, &world, now_ms, &mut fx);
        }
        evaluate_all(&mut self.rollouts, &world, now_ms, true, &mut fx);
        // What could wait for a tick is saved now.
        fx.save |= fx.save_soon || self.pending.save_soon;
        self.commit_logged(fx, "applying a tick");
        self.metrics.set_in_progress(&self.rollouts.by_stage());
        if self
            .clock
            .alive_marked_ms
            .is_none_or(|at| now_ms >= at + 1000)
        {
            self.mark_alive(now_ms);
        }
        self.save_nodes_due(now_ms);
    }

    /// The chain each listener of `node` runs now, by listener (for the fleet view).
    pub fn chains_for(&self, node: &str) -> BTreeMap<String, Vec<String>> {
        chains_for(&world!(self), node)
    }

    /// Applies effects in the one order: persist the rollout state, append the decisions to
    /// the log, raise alerts and count, record per-proxy health, re-serve proxies. When saving fails nothing after it
    /// happens: the effects wait, and the next tick tries again.
    fn commit(&mut self, fx: Effects) -> Result<(), Error> {
        self.pending.merge(fx);
        if self.pending.is_empty() && self.unsaved_catalog.is_none() {
            return Ok(());
        }
        if let Some(record) = &self.unsaved_catalog {
            self.store.save_catalog(record)?;
            self.unsaved_catalog = None;
        }
        // Numbered now, counted only once stored: a failed save leaves no gap in the log.
        let entries: Vec<Decision> = (self.next_seq..)
            .zip(&self.pending.decisions)
            .map(|(seq, (entry, _))| Decision {
                seq,
                ..entry.clone()
            })
            .collect();
        if self.pending.save || !entries.is_empty() {
            let plugins = self.pending.save.then_some(&self.rollouts.records);
            self.store.save_with(plugins, &entries)?;
            // The whole state is on disk: what could have waited for a tick is in it too.
            if self.pending.save {
                self.pending.save = false;
                self.pending.save_soon = false;
            }
            self.next_seq += entries.len() as u64;
        }
        let save_soon = self.pending.save_soon;
        let fx = std::mem::take(&mut self.pending);
        self.pending.save_soon = save_soon;
        for (entry, (_, alert)) in entries.iter().zip(&fx.decisions) {
            log_decision(entry);
            if *alert {
                self.raise(entry);
            }
        }
        for count in fx.counts {
            match count {
                Count::Started(plugin) => self.metrics.started(&plugin),
                Count::Promoted(plugin) => self.metrics.promoted(&plugin),
                Count::RolledBack(plugin, gate) => self.metrics.rolled_back(&plugin, gate),
                Count::RollbackSeconds(s) => self.metrics.rollback_seconds(s),
            }
        }
        for look in &fx.health {
            let failing = look.failing.as_deref();
            self.nodes
                .set_failing(&look.node, &look.plugin, &look.version, failing, look.at_ms);
        }
        let nodes: Vec<String> = if fx.serve_all {
            self.nodes.ids().cloned().collect()
        } else {
            fx.serve.into_iter().collect()
        };
        for node in nodes {
            self.sync_node(&node);
        }
        Ok(())
    }

    /// [`Engine::commit`] where the caller has no one to tell: a failure is logged.
    fn commit_logged(&mut self, fx: Effects, what: &str) {
        if let Err(err) = self.commit(fx) {
            tracing::error!(error = %err, "{what}: saving rollout state failed; retried on the next tick");
        }
    }

    /// Raises an alert: a structured error event, a counter and the webhook.
    fn raise(&mut self, entry: &Decision) {
        tracing::error!(target: "meshplug::alert", plugin = %entry.plugin, rollout = %entry.rollout,
            action = %entry.action, gate = ?entry.gate, reason = %entry.reason, "rollout alert");
        self.metrics.alert(&entry.plugin, &entry.action);
        if let Some(alerts) = &self.alerts {
            let _ = alerts.send(entry.clone());
        }
    }

    /// Serves `node` its desired versions, and notes them in the node model.
    fn sync_node(&mut self, node: &str) {
        // Another replica's node is served there: no record or snapshot of it here.
        if !self.nodes.holds(node) {
            return;
        }
        let world = world!(self);
        let desired = desired_for(&self.rollouts, &world, node);
        let labels: BTreeMap<String, String> = desired
            .iter()
            .map(|(name, r)| (name.clone(), r.version.clone()))
            .collect();
        self.nodes.set_desired(node, &labels);
        let delivery = self.nodes.get(node).map_or(Delivery::Local, Node::delivery);
        self.serving
            .serve((node, delivery), &desired, &self.placement);
    }
}

/// Emits a decision as a structured event.
fn log_decision(entry: &Decision) {
    tracing::info!(target: "meshplug::decision", plugin = %entry.plugin, rollout = %entry.rollout,
        action = %entry.action, gate = ?entry.gate, stage = ?entry.stage, reason = %entry.reason,
        "rollout decision");
}

mod delivery;
mod housekeeping;
mod manifests;
mod replica;
mod views;
pub use replica::{RELAY_BOUND, RelayedFlush, Role};
mod translate;

#[cfg(test)]
pub(super) mod tests;

#[cfg(test)]
mod restart_tests;

#[cfg(test)]
mod applied_tests;

#[cfg(test)]
mod effects_tests;

#[cfg(test)]
mod placement_tests;

#[cfg(test)]
mod delivery_tests;

#[cfg(test)]
mod replica_tests;

#[cfg(test)]
mod history_tests;

#[cfg(test)]
mod removal_tests;

#[cfg(test)]
mod first_version_tests;
