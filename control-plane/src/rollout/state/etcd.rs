//! [`RolloutStore`] on etcd, for replicas (`meshplug-replicas`): the rollout state lives in
//! etcd instead of `<data>/rollouts/`, and every write is a fenced write of the leader, so a
//! replica that lost its leadership cannot change it. Layout under the cluster prefix:
//! `plugins/<name>` (one rollout record each, JSON; a save writes the changed ones and deletes
//! the gone ones in one transaction), `nodes/<replica>/<node>` (the node model this replica
//! holds, a key per node),
//! `log/<seq, 20 digits>` (the decision log: the newest [`RECENT`] entries; older ones are
//! deleted as new ones land, and the leader appends them to `<data>/rollouts/decisions.jsonl`) and `alive` (the leader's up mark).
//!
//! A follower's state ([`EtcdState::follower`]) writes only this replica's own keys (its
//! nodes, under its membership lease); the rest is the leader's, and a follower is refused
//! ([`Error::NotLeader`]).
//!
//! The engine's store calls are synchronous; each etcd round trip here blocks the calling
//! worker thread (`block_in_place`), so it needs the multi-threaded runtime `serve` runs on.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use meshplug_core::nodes::Node;
use meshplug_replicas::{Etcd, Leadership, Membership};

use super::{Decision, PluginRecord, RolloutStore};
use crate::Error;

/// Decisions kept in etcd and in memory.
pub const RECENT: usize = 10_000;

/// The rollout state of the replica that leads, in etcd.
pub struct EtcdState {
    etcd: Etcd,
    /// `None` on a follower: it writes nothing of the leader's.
    leadership: Option<Arc<Leadership>>,
    /// Where this replica's own keys are written; without it (tests), the nodes are a fenced
    /// write of the leader.
    membership: Option<Arc<Membership>>,
    /// Counts the writes etcd refused because this replica no longer led.
    fenced: Arc<AtomicU64>,
    replica: String,
    runtime: tokio::runtime::Handle,
    recent: VecDeque<Decision>,
    alive_ms: Option<u64>,
    /// What each plugin's key held at the last load or save, to write only changes.
    saved: Mutex<BTreeMap<String, Vec<u8>>>,
    /// How long one etcd call may take (the engine lock is held across it).
    timeout: Duration,
    /// Decisions kept in etcd and in memory ([`RECENT`] unless a test says otherwise).
    bound: usize,
    /// Where the leader writes the decisions that leave etcd (`<data>/rollouts/`, as the
    /// embedded store's log: fsynced, rotated).
    archive: Option<super::log::DecisionLog>,
    /// The latest node model for the publisher (with a membership): written in the
    /// background, never under the engine lock.
    nodes_out: OnceLock<tokio::sync::watch::Sender<NodeValues>>,
}

impl std::fmt::Debug for EtcdState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdState")
            .field("replica", &self.replica)
            .field("term", &self.leadership.as_ref().map(|l| l.term()))
            .finish_non_exhaustive()
    }
}

/// Each node's JSON, by node id: what `nodes/<replica>/<id>` holds.
type NodeValues = BTreeMap<String, Vec<u8>>;

/// The key of the manifests in force ([`crate::catalog::CatalogRecord`]).
pub const CATALOG_KEY: &str = "catalog";

fn log_key(seq: u64) -> String {
    format!("log/{seq:020}")
}

impl EtcdState {
    /// The state in `etcd`, written as `leadership` (of replica `replica`); reads the decision
    /// log and the up mark now. Call from the multi-threaded runtime.
    pub fn open(etcd: Etcd, leadership: Arc<Leadership>, replica: &str) -> Result<Self, Error> {
        Self::open_as(etcd, Some(leadership), replica)
    }

    /// A follower's state: it reads the leader's state and writes only its own nodes, under
    /// `membership`. Call from the multi-threaded runtime.
    pub fn follower(
        etcd: Etcd,
        membership: Arc<Membership>,
        replica: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let state = Self::unloaded_follower(etcd, membership, replica).on_runtime(runtime);
        state.loaded()
    }

    /// A follower's state that reads nothing now (etcd did not answer): its decision log
    /// fills as the watch brings entries.
    pub fn unloaded_follower(etcd: Etcd, membership: Arc<Membership>, replica: &str) -> Self {
        Self::unloaded_follower_of(etcd, replica).with_membership(membership)
    }

    /// Keeps the newest `bound` decisions in etcd and memory, and appends each one that
    /// leaves them to the decision log in `dir` (the leader's data folder).
    pub fn archiving(mut self, dir: &std::path::Path, bound: usize) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        let limits = super::log::LogLimits {
            in_memory: 1,
            ..super::log::LogLimits::default()
        };
        self.archive = Some(super::log::DecisionLog::open(dir, limits)?);
        self.bound = bound.max(1);
        Ok(self)
    }

    /// Starts from `decisions` (what the engine knew when this store replaced another).
    pub fn knowing(mut self, decisions: Vec<Decision>) -> Self {
        self.recent = decisions.into();
        self
    }

    /// This replica's nodes are written under `membership` (not fenced: they are its own).
    pub fn with_membership(mut self, membership: Arc<Membership>) -> Self {
        self.membership = Some(membership);
        self
    }

    /// Runs its etcd calls on `runtime` (one whose workers nothing else blocks: the engine
    /// lock is held across each call, so the runtime that drives etcd's connections must not
    /// be one whose workers wait for that lock).
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = runtime;
        self
    }

    /// Fenced writes refused are counted in `fenced`.
    pub fn counting_fenced(mut self, fenced: Arc<AtomicU64>) -> Self {
        self.fenced = fenced;
        self
    }

    /// A leader's state on `runtime`: it reads the decision log and the up mark now.
    pub fn leading_on(
        etcd: Etcd,
        leadership: Arc<Leadership>,
        replica: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let mut state = Self::unloaded_follower_of(etcd, replica);
        state.leadership = Some(leadership);
        state.on_runtime(runtime).loaded()
    }

    fn open_as(
        etcd: Etcd,
        leadership: Option<Arc<Leadership>>,
        replica: &str,
    ) -> Result<Self, Error> {
        let mut state = Self::unloaded_follower_of(etcd, replica);
        state.leadership = leadership;
        state.loaded()
    }

    fn unloaded_follower_of(etcd: Etcd, replica: &str) -> Self {
        Self {
            etcd,
            leadership: None,
            membership: None,
            fenced: Arc::default(),
            replica: replica.to_string(),
            runtime: tokio::runtime::Handle::current(),
            recent: VecDeque::new(),
            alive_ms: None,
            saved: Mutex::default(),
            timeout: Duration::from_secs(5),
            bound: RECENT,
            archive: None,
            nodes_out: OnceLock::new(),
        }
    }

    /// Each etcd call gives up after `timeout` (say, the lease: a leader whose writes take
    /// longer has likely lost it anyway, and the engine must not wait longer for it).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the decision log and the up mark.
    fn loaded(mut self) -> Result<Self, Error> {
        let state = &mut self;
        let (log, _) = state.block(state.etcd.snapshot("log"))?;
        for bytes in log.values() {
            state.recent.push_back(serde_json::from_slice(bytes)?);
        }
        let alive = state.block(state.etcd.get("alive"))?;
        state.alive_ms = alive.and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok());
        Ok(self)
    }

    /// Runs one etcd call to its end on this thread.
    fn block<T>(
        &self,
        call: impl Future<Output = Result<T, meshplug_replicas::Error>>,
    ) -> Result<T, Error> {
        let timeout = self.timeout;
        let bounded = async move { tokio::time::timeout(timeout, call).await };
        match tokio::task::block_in_place(|| self.runtime.block_on(bounded)) {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::EtcdTimeout(timeout)),
        }
    }

    /// Hands the latest node model to the publisher task (started on first use), which
    /// writes it under the membership and tries again until it lands or a newer one comes.
    fn publish_nodes(&self, membership: &Arc<Membership>, values: NodeValues) {
        let out = self.nodes_out.get_or_init(|| {
            let (tx, rx) = tokio::sync::watch::channel(NodeValues::new());
            let prefix = format!("nodes/{}/", self.replica);
            self.runtime
                .spawn(publish_nodes(Arc::clone(membership), prefix, rx));
            tx
        });
        let _ = out.send(values);
    }

    /// The leadership, or why this replica may not write the leader's keys.
    fn leader(&self) -> Result<&Leadership, Error> {
        self.leadership
            .as_deref()
            .ok_or_else(|| Error::NotLeader("only the leader writes the rollout state".into()))
    }

    /// Runs one fenced write, counting a refusal.
    fn fenced_write<T>(
        &self,
        call: impl Future<Output = Result<T, meshplug_replicas::Error>>,
    ) -> Result<T, Error> {
        let result = self.block(call);
        if let Err(Error::Replicas(meshplug_replicas::Error::Fenced { .. })) = &result {
            self.fenced.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl RolloutStore for EtcdState {
    fn load_plugins(&self) -> Result<BTreeMap<String, PluginRecord>, Error> {
        let (found, _) = self.block(self.etcd.snapshot("plugins"))?;
        let mut plugins = BTreeMap::new();
        for (name, bytes) in &found {
            plugins.insert(name.clone(), serde_json::from_slice(bytes)?);
        }
        *self.saved.lock().unwrap_or_else(PoisonError::into_inner) = found;
        Ok(plugins)
    }

    fn save_plugins(&self, plugins: &BTreeMap<String, PluginRecord>) -> Result<(), Error> {
        self.save_all(Some(plugins), &[])
    }

    fn save_with(
        &mut self,
        plugins: Option<&BTreeMap<String, PluginRecord>>,
        decisions: &[Decision],
    ) -> Result<(), Error> {
        self.save_all(plugins, decisions)?;
        for decision in decisions {
            let mut decision = decision.clone();
            decision.term = self.leadership.as_ref().map(|l| l.term());
            self.learn(decision);
        }
        Ok(())
    }
    fn load_nodes(&self) -> Result<BTreeMap<String, Node>, Error> {
        let (found, _) = self.block(self.etcd.snapshot(&format!("nodes/{}", self.replica)))?;
        let mut nodes = BTreeMap::new();
        for (id, bytes) in found {
            match serde_json::from_slice(&bytes) {
                Ok(node) => {
                    nodes.insert(id, node);
                }
                Err(err) => tracing::warn!(node = %id, error = %err,
                    "node state in etcd unreadable; learned again when it connects"),
            }
        }
        Ok(nodes)
    }

    fn save_nodes(&self, nodes: &BTreeMap<String, Node>) -> Result<(), Error> {
        let mut values = NodeValues::new();
        for (id, node) in nodes {
            values.insert(id.clone(), serde_json::to_vec(node)?);
        }
        match &self.membership {
            Some(membership) => self.publish_nodes(membership, values),
            None => {
                let puts: Vec<(String, Vec<u8>)> = values
                    .into_iter()
                    .map(|(id, bytes)| (format!("nodes/{}/{id}", self.replica), bytes))
                    .collect();
                for batch in puts.chunks(meshplug_replicas::BATCH) {
                    self.fenced_write(self.leader()?.apply(batch, &[]))?;
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        // The one write of a decision: stamped with the term, the oldest past the bound deleted.
        self.save_with(None, std::slice::from_ref(decision))
    }

    fn save_catalog(&self, catalog: &crate::catalog::CatalogRecord) -> Result<(), Error> {
        let bytes = serde_json::to_vec(catalog)?;
        self.fenced_write(self.leader()?.put(CATALOG_KEY, &bytes))?;
        Ok(())
    }

    fn archive_dir(&self) -> Option<&std::path::Path> {
        self.archive.as_ref().map(super::log::DecisionLog::dir)
    }

    fn learn(&mut self, decision: Decision) {
        if self
            .recent
            .back()
            .is_some_and(|last| last.seq >= decision.seq)
        {
            return;
        }
        self.recent.push_back(decision);
        while self.recent.len() > self.bound {
            let Some(gone) = self.recent.pop_front() else {
                break;
            };
            if let Some(archive) = &mut self.archive
                && let Err(err) = archive.append(&gone)
            {
                tracing::error!(seq = gone.seq, error = %err, "archiving a decision");
            }
        }
    }

    fn last_seq(&self) -> u64 {
        self.recent.back().map_or(0, |d| d.seq)
    }

    fn recent(&self) -> Box<dyn DoubleEndedIterator<Item = &Decision> + '_> {
        Box::new(self.recent.iter())
    }

    fn mark_alive(&self, now_ms: u64) -> Result<(), Error> {
        self.fenced_write(self.leader()?.put("alive", now_ms.to_string().as_bytes()))?;
        Ok(())
    }

    fn last_alive_ms(&self) -> Option<u64> {
        self.alive_ms
    }
}

impl EtcdState {
    /// Writes the changed records and the decisions (with this term), and deletes the gone
    /// records and the decisions past [`RECENT`], in one fenced transaction.
    fn save_all(
        &self,
        plugins: Option<&BTreeMap<String, PluginRecord>>,
        decisions: &[Decision],
    ) -> Result<(), Error> {
        let mut saved = self.saved.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut puts, mut gone, now) = match plugins {
            Some(plugins) => plugin_changes(&saved, plugins)?,
            None => (Vec::new(), Vec::new(), saved.clone()),
        };
        let term = self.leadership.as_ref().map(|l| l.term());
        for decision in decisions {
            let decision = Decision {
                term,
                ..decision.clone()
            };
            puts.push((log_key(decision.seq), serde_json::to_vec(&decision)?));
            if let Some(old) = decision
                .seq
                .checked_sub(self.bound as u64)
                .filter(|s| *s > 0)
            {
                gone.push(log_key(old));
            }
        }
        if puts.is_empty() && gone.is_empty() {
            return Ok(());
        }
        self.fenced_write(self.leader()?.apply(&puts, &gone))?;
        *saved = now;
        Ok(())
    }
}

/// The puts and deletes that turn `saved` into `plugins`, and what `saved` is then.
#[allow(clippy::type_complexity)]
fn plugin_changes(
    saved: &BTreeMap<String, Vec<u8>>,
    plugins: &BTreeMap<String, PluginRecord>,
) -> Result<
    (
        Vec<(String, Vec<u8>)>,
        Vec<String>,
        BTreeMap<String, Vec<u8>>,
    ),
    Error,
> {
    let mut puts = Vec::new();
    let mut now = BTreeMap::new();
    for (name, record) in plugins {
        let bytes = serde_json::to_vec(record)?;
        if saved.get(name) != Some(&bytes) {
            puts.push((format!("plugins/{name}"), bytes.clone()));
        }
        now.insert(name.clone(), bytes);
    }
    let gone: Vec<String> = saved
        .keys()
        .filter(|name| !now.contains_key(*name))
        .map(|name| format!("plugins/{name}"))
        .collect();
    Ok((puts, gone, now))
}

/// Writes each node model handed over (the latest one wins) under the membership lease, one
/// key per node (`<prefix><id>`: only what changed since the last write lands, and no value
/// grows with the fleet), retrying every half second while etcd does not take it.
async fn publish_nodes(
    membership: Arc<Membership>,
    prefix: String,
    mut latest: tokio::sync::watch::Receiver<NodeValues>,
) {
    let mut published = NodeValues::new();
    while latest.changed().await.is_ok() {
        loop {
            let values = latest.borrow_and_update().clone();
            let puts: Vec<(String, Vec<u8>)> = values
                .iter()
                .filter(|(id, bytes)| published.get(*id) != Some(*bytes))
                .map(|(id, bytes)| (format!("{prefix}{id}"), bytes.clone()))
                .collect();
            let gone: Vec<String> = published
                .keys()
                .filter(|id| !values.contains_key(*id))
                .map(|id| format!("{prefix}{id}"))
                .collect();
            let put = tokio::time::timeout(Duration::from_secs(10), membership.apply(&puts, &gone));
            match put.await {
                Ok(Ok(())) => {
                    published = values;
                    break;
                }
                Ok(Err(err)) => tracing::warn!(error = %err, "publishing this replica's nodes"),
                Err(_) => tracing::warn!("publishing this replica's nodes: etcd did not answer"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
