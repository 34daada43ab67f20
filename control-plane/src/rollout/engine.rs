//! The rollout engine: the I/O shell around [`super::decide`]. It holds the persisted state,
//! follows proxies (xDS events, pushed stats, connects), decides per proxy which version of
//! each filter it is served, writes state before every push, logs decisions and raises alerts.
//!
//! Every proxy is served from its own snapshot group (its node id), so a canary gets a version
//! the rest of the fleet does not. All methods take the clock as an argument.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use xds::{NodeInfo, PreparedResource, SnapshotCache, XdsEvent, type_url};

use super::applied::ReloadClock;
use super::decide::{Stage, millis};
use super::metrics::RolloutMetrics;
use super::placement::Placement;
use super::policy::Policy;
use super::progress::decision;
use super::signals::{FlushSample, NodeSignals};
use super::state::{Decision, NodeRecord, PluginRecord, Release, StateFiles};
use crate::Error;

/// What [`Engine::release`] did with a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// A rollout began.
    Started,
    /// It waits for the rollout in progress.
    Queued,
    /// It is already the last good, the rollout's target or the queued version.
    Unchanged,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Connection {
    pub(super) streams: u32,
    pub(super) disconnected_at: Option<u64>,
    /// The Envoy version the proxy reported (`major.minor.patch`).
    pub(super) envoy_version: Option<String>,
    /// What the proxy said about itself (cluster, metadata) when it last connected.
    pub(super) info: Option<NodeInfo>,
}

/// The rollout engine. Lock it behind a mutex; every input is a method call.
#[derive(Debug)]
pub struct Engine {
    pub(super) policy: Policy,
    pub(super) files: StateFiles,
    pub(super) plugins: BTreeMap<String, PluginRecord>,
    pub(super) nodes: BTreeMap<String, NodeRecord>,
    pub(super) nodes_dirty: bool,
    pub(super) nodes_saved_ms: u64,
    pub(super) connected: BTreeMap<String, Connection>,
    pub(super) signals: HashMap<String, NodeSignals>,
    pub(super) resources: HashMap<(String, String), PreparedResource>,
    pub(super) cache: Arc<SnapshotCache>,
    pub(super) alerts: Option<mpsc::UnboundedSender<Decision>>,
    pub(super) metrics: Arc<RolloutMetrics>,
    pub(super) next_seq: u64,
    pub(super) rollbacks_in_flight: Vec<RollbackInFlight>,
    /// The first clock reading this process saw.
    pub(super) opened_ms: Option<u64>,
    /// An ACK or a join happened since the last look: the next tick looks at once.
    pub(super) look_soon: bool,
    /// Rollout state changed without a push (a proxy joined): the next tick saves it.
    pub(super) plugins_dirty: bool,
    /// What the manifests say about where plugins go.
    pub(super) placement: Placement,
    /// Sends and clean reloads, for "applied".
    pub(super) reloads: ReloadClock,
    /// When the `alive` mark was last written.
    pub(super) alive_marked_ms: Option<u64>,
}

/// A rollback whose nodes have not all ACKed the last good version yet.
#[derive(Debug, Clone)]
pub(super) struct RollbackInFlight {
    pub(super) plugin: String,
    pub(super) rollout: String,
    pub(super) version: String,
    pub(super) nodes: BTreeSet<String>,
    pub(super) started_ms: u64,
}

impl Engine {
    /// Loads the state under `files` and serves it into `cache`.
    pub fn open(
        policy: Policy,
        files: StateFiles,
        cache: Arc<SnapshotCache>,
        metrics: Arc<RolloutMetrics>,
        alerts: Option<mpsc::UnboundedSender<Decision>>,
    ) -> Result<Self, Error> {
        let plugins = files.load_plugins()?;
        let nodes = files.load_nodes()?;
        let next_seq = files.last_seq() + 1;
        let engine = Self {
            policy,
            files,
            plugins,
            nodes,
            nodes_dirty: false,
            nodes_saved_ms: 0,
            connected: BTreeMap::new(),
            signals: HashMap::new(),
            resources: HashMap::new(),
            cache,
            alerts,
            metrics,
            next_seq,
            rollbacks_in_flight: Vec::new(),
            opened_ms: None,
            look_soon: false,
            plugins_dirty: false,
            placement: Placement::default(),
            reloads: ReloadClock::default(),
            alive_marked_ms: None,
        };
        for (name, plugin) in &engine.plugins {
            if let Some(rollout) = &plugin.rollout {
                tracing::info!(plugin = %name, rollout = %rollout.id, stage = ?rollout.stage,
                    "resuming rollout from saved state");
            }
        }
        Ok(engine)
    }

    /// Re-arms the clocks of the rollouts loaded from disk, at the first clock reading after a
    /// start: every deadline (ACK, step, bake) counts time the control plane was up and
    /// watching, so the downtime since it was last alive is added to each rollout's
    /// timestamps. Call it once, right after [`Engine::open`].
    pub fn resume_clocks(&mut self, now_ms: u64) {
        self.opened_ms.get_or_insert(now_ms);
        let Some(alive) = self.files.last_alive_ms() else {
            return;
        };
        let down = now_ms.saturating_sub(alive);
        if down == 0 {
            return;
        }
        let mut shifted = false;
        for (name, record) in &mut self.plugins {
            let Some(rollout) = record.rollout.as_mut() else {
                continue;
            };
            rollout.stage_started_ms += down;
            rollout.started_ms += down;
            rollout.last_look_ms += down;
            for at in rollout.pushed.values_mut() {
                *at += down;
            }
            shifted = true;
            tracing::info!(plugin = %name, rollout = %rollout.id, downtime_ms = down,
                "rollout clocks re-armed: the downtime does not count against its deadlines");
        }
        if shifted && let Err(err) = self.save_plugins() {
            tracing::error!(error = %err, "saving re-armed rollout state");
            self.plugins_dirty = true;
        }
        // Marked at once: a crash before the next tick must not count this downtime twice.
        if let Err(err) = self.files.mark_alive(now_ms) {
            tracing::warn!(error = %err, "marking the control plane alive");
        }
        self.alive_marked_ms = Some(now_ms);
    }

    /// Saves the per-proxy state now (on shutdown).
    pub fn save_nodes(&mut self) -> Result<(), Error> {
        self.files.save_nodes(&self.nodes)?;
        self.nodes_dirty = false;
        Ok(())
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every filter's rollout state.
    pub fn plugins(&self) -> &BTreeMap<String, PluginRecord> {
        &self.plugins
    }

    /// Every proxy's desired, ACKed and NACKed versions.
    pub fn nodes(&self) -> &BTreeMap<String, NodeRecord> {
        &self.nodes
    }

    /// The decisions kept in memory (the most recent ones; the whole log is on disk),
    /// oldest first.
    pub fn decisions(&self) -> Result<Vec<Decision>, Error> {
        Ok(self.files.decisions().cloned().collect())
    }

    /// Up to `limit` decisions about `plugin` after sequence number `since`, oldest first;
    /// with `newest`, the last `limit` of them instead of the first.
    pub fn decisions_of(
        &self,
        plugin: &str,
        since: u64,
        limit: usize,
        newest: bool,
    ) -> Vec<Decision> {
        let mine = |d: &&Decision| d.plugin == plugin && d.seq > since;
        if newest {
            let mut out: Vec<Decision> = self
                .files
                .decisions()
                .rev()
                .filter(mine)
                .take(limit)
                .cloned()
                .collect();
            out.reverse();
            out
        } else {
            self.files
                .decisions()
                .filter(mine)
                .take(limit)
                .cloned()
                .collect()
        }
    }

    /// Why `version` of `plugin` is quarantined, if it is.
    pub fn quarantined(&self, plugin: &str, version: &str) -> Option<String> {
        let record = self.plugins.get(plugin)?;
        record.quarantine.get(version).map(|q| q.reason.clone())
    }

    /// A new version of `plugin` passed ingest: start a rollout, or queue it behind the one in
    /// progress. A quarantined version is refused.
    pub fn release(
        &mut self,
        plugin: &str,
        release: Release,
        now_ms: u64,
    ) -> Result<ReleaseOutcome, Error> {
        if let Some(reason) = self.quarantined(plugin, &release.version) {
            return Err(Error::Quarantined {
                plugin: plugin.to_string(),
                version: release.version,
                reason,
            });
        }
        let record = self.plugins.entry(plugin.to_string()).or_default();
        let reverts = record.rollout.is_some()
            && record
                .last_good
                .as_ref()
                .is_some_and(|g| g.version == release.version);
        if reverts {
            let nodes =
                self.cancel_rollout(plugin, "the last good version was published again", now_ms)?;
            for node in nodes {
                self.sync_node(&node);
            }
            return Ok(ReleaseOutcome::Unchanged);
        }
        let record = self.plugins.entry(plugin.to_string()).or_default();
        let known = [
            record.last_good.as_ref(),
            record.rollout.as_ref().map(|r| &r.to),
            record.queued.as_ref(),
        ];
        if known.iter().flatten().any(|r| r.version == release.version) {
            return Ok(ReleaseOutcome::Unchanged);
        }
        if record.rollout.is_some() && self.plugin_policy(plugin).supersede {
            // A version every proxy already ACKed, with nothing left to judge, is live: it
            // becomes the last good one rather than being cancelled (the next tick would have
            // promoted it anyway).
            if self.promote_if_settled(plugin, now_ms)? {
                self.start_rollout(plugin, release, now_ms)?;
                return Ok(ReleaseOutcome::Started);
            }
            // Serve the superseded version's proxies only once the new rollout is in place, so
            // none of them is sent the last good version in between.
            let reason = format!("superseded by {}", release.version);
            let nodes = self.cancel_rollout(plugin, &reason, now_ms)?;
            self.start_rollout(plugin, release, now_ms)?;
            for node in nodes {
                self.sync_node(&node);
            }
            return Ok(ReleaseOutcome::Started);
        }
        let record = self.plugins.entry(plugin.to_string()).or_default();
        if let Some(rollout) = &record.rollout {
            let replaced = record.queued.replace(release.clone());
            let reason = match replaced {
                Some(old) => format!(
                    "queued behind {}; replaces queued {}",
                    rollout.id, old.version
                ),
                None => format!("queued behind {}", rollout.id),
            };
            let mut entry = decision(plugin, rollout, "queue", reason, now_ms);
            entry.to = release.version.clone();
            self.save_plugins()?;
            self.append(entry);
            return Ok(ReleaseOutcome::Queued);
        }
        self.start_rollout(plugin, release, now_ms)?;
        Ok(ReleaseOutcome::Started)
    }

    /// A proxy opened an ADS stream: decide its versions before it is served, and return the
    /// snapshot group it is served from. A proxy that dropped its stream and came back within
    /// a rollout's crash window counts as a restart against the new version; it is served the
    /// last good version.
    pub fn on_connect(&mut self, node: &NodeInfo, now_ms: u64) -> String {
        self.opened_ms.get_or_insert(now_ms);
        let connection = self.connected.entry(node.id.clone()).or_default();
        connection.streams += 1;
        connection.envoy_version = node.user_agent_version.clone();
        connection.info = Some(node.clone());
        let came_back = connection.disconnected_at.take().is_some();
        self.nodes.entry(node.id.clone()).or_default();
        if came_back && self.in_crash_window(&node.id, now_ms) {
            tracing::warn!(node = %node.id, "proxy came back within a crash window: counted as a restart");
            self.signals
                .entry(node.id.clone())
                .or_default()
                .note_restart(now_ms);
            // Decide now, so the proxy is served the last good version from its first response.
            self.evaluate_all(now_ms, false);
        }
        self.rearm_unacked(&node.id, now_ms);
        self.join_full_rollouts(&node.id, now_ms);
        self.sync_node(&node.id);
        node.id.clone()
    }

    /// A proxy that connects while a rollout has pushed it a version it has not ACKed is sent
    /// that version again now: its ACK deadline counts from now.
    fn rearm_unacked(&mut self, node: &str, now_ms: u64) {
        let acked = self.nodes.get(node).map(|r| &r.acked);
        for (name, record) in &mut self.plugins {
            let Some(rollout) = record.rollout.as_mut() else {
                continue;
            };
            let unacked = acked.and_then(|a| a.get(name)) != Some(&rollout.to.version);
            if let Some(at) = rollout.pushed.get_mut(node).filter(|_| unacked) {
                *at = (*at).max(now_ms);
                self.plugins_dirty = true;
            }
        }
    }

    fn in_crash_window(&self, node: &str, now_ms: u64) -> bool {
        self.plugins.iter().any(|(name, p)| {
            let window = millis(self.plugin_policy(name).crash_window);
            p.rollout
                .as_ref()
                .is_some_and(|r| r.pushed.get(node).is_some_and(|at| now_ms <= at + window))
        })
    }

    /// A proxy that connects during a rollout's last step, or during bake, joins it.
    fn join_full_rollouts(&mut self, node: &str, now_ms: u64) {
        let envoy_version = self.envoy_version(node).map(String::from);
        let lasts: BTreeMap<String, usize> = self
            .plugins
            .keys()
            .filter(|name| self.targets(name, node))
            .map(|name| {
                let last = self.plugin_policy(name).steps.len().saturating_sub(1);
                (name.clone(), last)
            })
            .collect();
        let mut joined = false;
        for (name, record) in &mut self.plugins {
            let (Some(rollout), Some(&last)) = (record.rollout.as_mut(), lasts.get(name)) else {
                continue;
            };
            let full = rollout.from.is_none()
                || matches!(rollout.stage, Stage::Bake)
                || rollout.stage == Stage::Step(last);
            let runs_on = rollout.to.runs_on(envoy_version.as_deref());
            if full && runs_on && !rollout.pushed.contains_key(node) {
                rollout.canary.insert(node.to_string());
                rollout.pushed.insert(node.to_string(), now_ms);
                joined = true;
            }
        }
        if joined {
            // Saved by the next tick: a proxy that joins and is lost in a crash joins again
            // when it reconnects.
            self.plugins_dirty = true;
            self.look_soon = true;
        }
    }

    /// Follows one xDS stream event.
    pub fn on_event(&mut self, event: &XdsEvent, now_ms: u64) {
        let node = event.node().id.clone();
        match event {
            XdsEvent::StreamClosed { .. } => {
                if let Some(connection) = self.connected.get_mut(&node) {
                    connection.streams = connection.streams.saturating_sub(1);
                    if connection.streams == 0 {
                        connection.disconnected_at = Some(now_ms);
                    }
                }
            }
            XdsEvent::Ack {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                let record = self.nodes.entry(node.clone()).or_default();
                for resource in resources {
                    record
                        .acked
                        .insert(resource.name.clone(), resource.version.clone());
                }
                self.nodes_dirty = true;
                self.look_soon = true;
                for resource in resources {
                    self.settle_applied(&node, &resource.name);
                }
            }
            XdsEvent::Sent {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                for resource in resources {
                    self.note_sent(&node, &resource.name, now_ms);
                }
            }
            XdsEvent::Nack {
                type_url: t,
                resources,
                error,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                let record = self.nodes.entry(node.clone()).or_default();
                for resource in resources {
                    if record.acked.get(&resource.name) != Some(&resource.version) {
                        record.last_nack.insert(
                            resource.name.clone(),
                            (resource.version.clone(), error.clone()),
                        );
                    }
                }
                self.nodes_dirty = true;
                self.evaluate_all(now_ms, false);
            }
            _ => {}
        }
    }

    /// Records one stats flush from a proxy.
    pub fn on_metrics(&mut self, node: &str, sample: &FlushSample, now_ms: u64) {
        let slow_ms = self.policy.traffic.slow_threshold.as_secs_f64() * 1000.0;
        for filter in sample.reloads.keys() {
            if !sample.load_errors.contains_key(filter) {
                self.note_reload(node, filter, now_ms);
            }
        }
        let restarted = self
            .signals
            .entry(node.to_string())
            .or_default()
            .record(now_ms, sample, slow_ms);
        // Hard-gate signals are judged at once; traffic waits for its look.
        if !sample.load_errors.is_empty() || restarted {
            self.evaluate_all(now_ms, false);
        }
    }

    /// Runs due traffic looks and saves node state at most once a second.
    pub fn tick(&mut self, now_ms: u64) {
        self.opened_ms.get_or_insert(now_ms);
        if std::mem::take(&mut self.look_soon) {
            self.finish_rollbacks(now_ms);
        }
        self.evaluate_all(now_ms, true);
        self.metrics.set_in_progress(&self.rollouts_by_stage());
        if std::mem::take(&mut self.plugins_dirty)
            && let Err(err) = self.save_plugins()
        {
            tracing::error!(error = %err, "saving rollout state");
            self.plugins_dirty = true;
        }
        if self.alive_marked_ms.is_none_or(|at| now_ms >= at + 1000) {
            if let Err(err) = self.files.mark_alive(now_ms) {
                tracing::warn!(error = %err, "marking the control plane alive");
            }
            self.alive_marked_ms = Some(now_ms);
        }
        if self.nodes_dirty && now_ms >= self.nodes_saved_ms + 1000 {
            match self.files.save_nodes(&self.nodes) {
                Ok(()) => {
                    self.nodes_dirty = false;
                    self.nodes_saved_ms = now_ms;
                }
                Err(err) => tracing::error!(error = %err, "saving node state"),
            }
        }
    }

    /// Forgets proxies disconnected for more than `after_ms` (at `now_ms`): their connection,
    /// node record, signals, applied clocks and snapshot. A proxy a rollout in progress
    /// counts (canary, baseline, pushed) is kept until the rollout ends. Returns the forgotten.
    pub fn forget_disconnected(&mut self, now_ms: u64, after_ms: u64) -> Vec<String> {
        let in_rollouts: BTreeSet<&String> = self
            .plugins
            .values()
            .filter_map(|p| p.rollout.as_ref())
            .flat_map(|r| r.pushed.keys().chain(&r.baseline).chain(&r.canary))
            .collect();
        let gone: Vec<String> = self
            .connected
            .iter()
            .filter(|(id, c)| {
                c.streams == 0
                    && c.disconnected_at
                        .is_some_and(|at| now_ms.saturating_sub(at) > after_ms)
                    && !in_rollouts.contains(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.connected.remove(id);
            self.nodes.remove(id);
            self.signals.remove(id);
            self.reloads.forget(id);
            self.cache.remove_unwatched(id);
        }
        if !gone.is_empty() {
            self.nodes_dirty = true;
        }
        gone
    }

    pub(super) fn save_plugins(&self) -> Result<(), Error> {
        self.files.save_plugins(&self.plugins)
    }

    /// The Envoy version `node` reported when it last connected.
    pub(super) fn envoy_version(&self, node: &str) -> Option<&str> {
        self.connected
            .get(node)
            .and_then(|c| c.envoy_version.as_deref())
    }

    /// Connected proxies that `plugin` targets and that can run `release` (see
    /// [`Release::runs_on`]).
    pub(super) fn eligible_nodes(&self, plugin: &str, release: &Release) -> BTreeSet<String> {
        self.connected_nodes()
            .into_iter()
            .filter(|node| self.targets(plugin, node) && release.runs_on(self.envoy_version(node)))
            .collect()
    }

    /// Connected proxies.
    pub(super) fn connected_nodes(&self) -> BTreeSet<String> {
        self.connected
            .iter()
            .filter(|(_, c)| c.streams > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
pub(super) mod tests;

#[cfg(test)]
mod restart_tests;
