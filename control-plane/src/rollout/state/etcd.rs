//! [`RolloutStore`] on etcd, for replicas (`meshplug-replicas`): the rollout state lives in
//! etcd instead of `<data>/rollouts/`, and every write is a fenced write of the leader, so a
//! replica that lost its leadership cannot change it. Layout under the cluster prefix:
//! `plugins/<name>` (one rollout record each, JSON; a save writes the changed ones and deletes
//! the gone ones in one transaction), `nodes/<replica>` (the node model this replica holds),
//! `log/<seq, 20 digits>` (the decision log: the newest [`RECENT`] entries; older ones are
//! deleted as new ones land) and `alive` (the leader's up mark).
//!
//! The engine's store calls are synchronous; each etcd round trip here blocks the calling
//! worker thread (`block_in_place`), so it needs the multi-threaded runtime `serve` runs on.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use meshplug_core::nodes::Node;
use meshplug_replicas::{Etcd, Leadership};

use super::{Decision, PluginRecord, RolloutStore};
use crate::Error;

/// Decisions kept in etcd and in memory.
pub const RECENT: usize = 10_000;

/// The rollout state of the replica that leads, in etcd.
pub struct EtcdState {
    etcd: Etcd,
    leadership: Arc<Leadership>,
    replica: String,
    runtime: tokio::runtime::Handle,
    recent: VecDeque<Decision>,
    alive_ms: Option<u64>,
    /// What each plugin's key held at the last load or save, to write only changes.
    saved: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for EtcdState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdState")
            .field("replica", &self.replica)
            .field("term", &self.leadership.term())
            .finish_non_exhaustive()
    }
}

fn log_key(seq: u64) -> String {
    format!("log/{seq:020}")
}

impl EtcdState {
    /// The state in `etcd`, written as `leadership` (of replica `replica`); reads the decision
    /// log and the up mark now. Call from the multi-threaded runtime.
    pub fn open(etcd: Etcd, leadership: Arc<Leadership>, replica: &str) -> Result<Self, Error> {
        let mut state = Self {
            etcd,
            leadership,
            replica: replica.to_string(),
            runtime: tokio::runtime::Handle::current(),
            recent: VecDeque::new(),
            alive_ms: None,
            saved: Mutex::default(),
        };
        let (log, _) = state.block(state.etcd.snapshot("log"))?;
        for bytes in log.values() {
            state.recent.push_back(serde_json::from_slice(bytes)?);
        }
        let alive = state.block(state.etcd.get("alive"))?;
        state.alive_ms = alive.and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok());
        Ok(state)
    }

    /// Runs one etcd call to its end on this thread.
    fn block<T>(
        &self,
        call: impl Future<Output = Result<T, meshplug_replicas::Error>>,
    ) -> Result<T, Error> {
        tokio::task::block_in_place(|| self.runtime.block_on(call)).map_err(Error::from)
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
        let mut saved = self.saved.lock().unwrap_or_else(PoisonError::into_inner);
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
        if puts.is_empty() && gone.is_empty() {
            return Ok(());
        }
        self.block(self.leadership.apply(&puts, &gone))?;
        *saved = now;
        Ok(())
    }

    fn load_nodes(&self) -> Result<BTreeMap<String, Node>, Error> {
        let found = self.block(self.etcd.get(&format!("nodes/{}", self.replica)))?;
        match found {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "node state in etcd unreadable; learned again");
                BTreeMap::new()
            })),
            None => Ok(BTreeMap::new()),
        }
    }

    fn save_nodes(&self, nodes: &BTreeMap<String, Node>) -> Result<(), Error> {
        let key = format!("nodes/{}", self.replica);
        self.block(self.leadership.put(&key, &serde_json::to_vec(nodes)?))?;
        Ok(())
    }

    fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        let puts = [(log_key(decision.seq), serde_json::to_vec(decision)?)];
        let old: Vec<String> = match decision.seq.checked_sub(RECENT as u64) {
            Some(seq) if seq > 0 => vec![log_key(seq)],
            _ => Vec::new(),
        };
        self.block(self.leadership.apply(&puts, &old))?;
        self.recent.push_back(decision.clone());
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.recent.back().map_or(0, |d| d.seq)
    }

    fn recent(&self) -> Box<dyn DoubleEndedIterator<Item = &Decision> + '_> {
        Box::new(self.recent.iter())
    }

    fn mark_alive(&self, now_ms: u64) -> Result<(), Error> {
        self.block(self.leadership.put("alive", now_ms.to_string().as_bytes()))?;
        Ok(())
    }

    fn last_alive_ms(&self) -> Option<u64> {
        self.alive_ms
    }
}
