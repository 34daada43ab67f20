//! The rollout state that survives a restart, and the append-only decision log. Both live
//! under `<data>/rollouts/`: `state.json` (plugins and rollouts, written before every push,
//! in an [`envelope`] with a generation and a checksum; the generation before is
//! `state.json.prev`),
//! `nodes.json` (the node model: each proxy's identity and its desired, sent, ACKed,
//! applied and NACKed versions, written at most once a second; see `nodes_file`)
//! and `decisions.jsonl` (one JSON line per decision, fsynced, rotated: see [`log`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;
use crate::store::replace_synced;
use log::{DecisionLog, LogLimits};
use meshplug_core::nodes::Node;
pub use meshplug_core::rollout::record::{
    Decision, Paused, PluginRecord, Quarantined, Release, Rollout,
};

/// The files under `<data>/rollouts/`.
#[derive(Debug)]
pub struct StateFiles {
    dir: PathBuf,
    log: DecisionLog,
    generation: AtomicU64,
    store_has_artifacts: bool,
}

impl StateFiles {
    /// Opens (creating) the folder and the decision log.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::open_with(dir, LogLimits::default())
    }

    /// Opens with the decision log bounded by `limits`.
    pub fn open_with(dir: impl Into<PathBuf>, limits: LogLimits) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        let log = DecisionLog::open(&dir, limits)?;
        Ok(Self {
            dir,
            log,
            generation: AtomicU64::new(0),
            store_has_artifacts: false,
        })
    }

    /// Says whether the artifact store holds artifacts: then a missing, empty or corrupt
    /// `state.json` is an error instead of a first start.
    pub fn guarding(mut self, store_has_artifacts: bool) -> Self {
        self.store_has_artifacts = store_has_artifacts;
        self
    }

    /// `state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The generation last loaded or saved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Where the engine's state is kept. [`StateFiles`] (JSON files and a JSONL log under
/// `<data>/rollouts/`) is the embedded default; [`etcd::EtcdState`] keeps it in etcd for
/// replicas.
pub trait RolloutStore: std::fmt::Debug + Send {
    /// Every plugin's rollout record as last saved.
    fn load_plugins(&self) -> Result<BTreeMap<String, PluginRecord>, Error>;
    /// Saves every plugin's rollout record durably, before any proxy is served from it.
    fn save_plugins(&self, plugins: &BTreeMap<String, PluginRecord>) -> Result<(), Error>;
    /// The node model as last saved.
    fn load_nodes(&self) -> Result<BTreeMap<String, Node>, Error>;
    /// Saves the node model.
    fn save_nodes(&self, nodes: &BTreeMap<String, Node>) -> Result<(), Error>;
    /// Appends one decision to the log.
    fn append(&mut self, decision: &Decision) -> Result<(), Error>;
    /// The highest decision sequence number logged (0 for none).
    fn last_seq(&self) -> u64;
    /// The most recent decisions, oldest first.
    fn recent(&self) -> Box<dyn DoubleEndedIterator<Item = &Decision> + '_>;
    /// Notes that the control plane was up and watching at `now_ms`.
    fn mark_alive(&self, now_ms: u64) -> Result<(), Error>;
    /// When the control plane was last known up and watching.
    fn last_alive_ms(&self) -> Option<u64>;

    /// Saves the records (when `plugins` is given), then appends `decisions` (numbered in
    /// order). A log that cannot be written is reported, never fatal: the decisions are carried
    /// out anyway. A store that can do both at once does ([`etcd::EtcdState`]: one fenced
    /// transaction, so a leader that cannot write loses neither half alone).
    fn save_with(
        &mut self,
        plugins: Option<&BTreeMap<String, PluginRecord>>,
        decisions: &[Decision],
    ) -> Result<(), Error> {
        if let Some(plugins) = plugins {
            self.save_plugins(plugins)?;
        }
        for decision in decisions {
            if let Err(err) = self.append(decision) {
                tracing::error!(error = %err, seq = decision.seq, "writing the decision log");
            }
        }
        Ok(())
    }

    /// Saves the manifests in force, for the replicas that follow; ignored by a store of one
    /// process (it reads its manifest folders again when it starts).
    fn save_catalog(&self, catalog: &crate::catalog::CatalogRecord) -> Result<(), Error> {
        let _ = catalog;
        Ok(())
    }

    /// The folder whose decision log files hold the decisions that left [`Self::recent`]
    /// (read by [`log::read_archived`]); `None`: they are not kept.
    fn archive_dir(&self) -> Option<&std::path::Path> {
        None
    }

    /// A decision another replica logged (a follower's copy of the leader's log); ignored by
    /// stores that are written only by this process.
    fn learn(&mut self, decision: Decision) {
        let _ = decision;
    }

    /// Up to `limit` of the recent decisions about `plugin` after sequence number `since`,
    /// oldest first; with `newest`, the last `limit` of them instead of the first.
    fn decisions_of(&self, plugin: &str, since: u64, limit: usize, newest: bool) -> Vec<Decision> {
        let mine = |d: &&Decision| d.plugin == plugin && d.seq > since;
        if newest {
            let mut out: Vec<Decision> = self
                .recent()
                .rev()
                .filter(mine)
                .take(limit)
                .cloned()
                .collect();
            out.reverse();
            out
        } else {
            self.recent().filter(mine).take(limit).cloned().collect()
        }
    }
}

impl RolloutStore for StateFiles {
    /// The plugins as last saved (empty on first start). See [`envelope::resolve`] for when
    /// it refuses.
    fn load_plugins(&self) -> Result<BTreeMap<String, PluginRecord>, Error> {
        let path = self.state_path();
        let loaded = envelope::load(&path)?;
        let (generation, plugins) = envelope::resolve(&path, loaded, self.store_has_artifacts)?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(plugins)
    }

    /// The nodes as last saved. They are what proxies reported and are learned again when
    /// they reconnect, so a damaged `nodes.json` is logged and started over, not fatal.
    fn load_nodes(&self) -> Result<BTreeMap<String, Node>, Error> {
        let path = self.dir.join("nodes.json");
        match fs::read(&path) {
            Ok(bytes) => Ok(nodes_file::parse(&bytes).unwrap_or_else(|err| {
                tracing::warn!(file = %path.display(), error = %err,
                    "node state unreadable; it is learned again as proxies reconnect");
                BTreeMap::new()
            })),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(Error::io("reading", &path)(err)),
        }
    }

    /// Saves the plugins durably as the next generation, keeping the previous one.
    fn save_plugins(&self, plugins: &BTreeMap<String, PluginRecord>) -> Result<(), Error> {
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let saved_ms = crate::ingest::unix_ms();
        envelope::save(&self.state_path(), generation, saved_ms, plugins)?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    /// Notes that the control plane was up and watching at `now_ms` (`<dir>/alive`; written
    /// about once a second, not fsynced: a lost write only makes the next start count a
    /// little more of the downtime as up time).
    fn mark_alive(&self, now_ms: u64) -> Result<(), Error> {
        let path = self.dir.join("alive");
        let tmp = self.dir.join("alive.tmp");
        fs::write(&tmp, now_ms.to_string())
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(Error::io("writing", &path))
    }

    /// When the control plane was last known up and watching (the `alive` mark).
    fn last_alive_ms(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("alive"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    }

    /// Saves the nodes durably.
    fn save_nodes(&self, nodes: &BTreeMap<String, Node>) -> Result<(), Error> {
        // Compact: with thousands of proxies this is written up to once a second.
        let path = self.dir.join("nodes.json");
        replace_synced(
            &path,
            &path.with_extension("json.tmp"),
            &serde_json::to_vec(nodes)?,
        )
    }

    /// Appends one decision and fsyncs it.
    fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        self.log.append(decision)
    }

    /// The highest decision sequence number logged (0 for none).
    fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    /// The most recent decisions (bounded; the full log is on disk), oldest first.
    fn recent(&self) -> Box<dyn DoubleEndedIterator<Item = &Decision> + '_> {
        Box::new(self.log.recent())
    }

    /// `<data>/rollouts/`: every decision is in its log files.
    fn archive_dir(&self) -> Option<&std::path::Path> {
        Some(&self.dir)
    }
}

pub mod envelope;
pub mod etcd;
pub mod log;
mod nodes_file;

#[cfg(test)]
mod tests;
