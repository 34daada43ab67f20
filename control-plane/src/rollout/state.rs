//! The rollout state that survives a restart, and the append-only decision log. Both live
//! under `<data>/rollouts/`: `state.json` (plugins and rollouts, written before every push,
//! in an [`envelope`] with a generation and a checksum; the generation before is
//! `state.json.prev`),
//! `nodes.json` (per-proxy desired, ACKed and NACKed versions, written at most once a second)
//! and `decisions.jsonl` (one JSON line per decision, fsynced, rotated: see [`log`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::decide::{BaselineKind, Gate, Stage};
use super::traffic::Totals;
use crate::Error;
use crate::artifact::ArtifactKind;
use crate::manifest::FailurePolicy;
use crate::store::replace_synced;
use log::{DecisionLog, LogLimits};

/// One deployable version of a filter: an artifact and a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The ECDS version label, `<artifact sha256>:<config sha prefix>`.
    pub version: String,
    /// The artifact's sha256.
    pub sha256: String,
    /// The artifact's kind.
    pub kind: ArtifactKind,
    /// The artifact in the store.
    pub path: PathBuf,
    /// The configuration, compact JSON.
    pub config_json: String,
    /// For a dynamic module: the Envoy version it was built for. Proxies on another version
    /// never receive it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_version: Option<String>,
    /// What a proxy does when the filter fails (Wasm `failure_policy`).
    #[serde(default)]
    pub failure_policy: FailurePolicy,
}

impl Release {
    /// Whether a proxy reporting `proxy_version` (`major.minor.patch`, if known) may run it.
    /// A module that declares no version, and a proxy that reports none, are not held back.
    pub fn runs_on(&self, proxy_version: Option<&str>) -> bool {
        match (&self.envoy_version, proxy_version) {
            (Some(built_for), Some(proxy)) => built_for == proxy,
            _ => true,
        }
    }
}

/// Why a rollout is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// The reason.
    pub reason: String,
    /// Paused by a person: only `resume` lifts it. Otherwise it lifts once the cause clears.
    pub manual: bool,
}

/// A rollout in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// A unique id; the cohort hash seeds from it.
    pub id: String,
    /// The last good version it replaces.
    pub from: Option<Release>,
    /// The new version.
    pub to: Release,
    /// The current stage.
    pub stage: Stage,
    /// When it began.
    pub stage_started_ms: u64,
    /// When the rollout began.
    pub started_ms: u64,
    /// Set while paused.
    pub paused: Option<Paused>,
    /// The current canary cohort.
    pub canary: BTreeSet<String>,
    /// The current baseline cohort.
    pub baseline: BTreeSet<String>,
    /// Proxies handed the new version, and when.
    pub pushed: BTreeMap<String, u64>,
    /// Consecutive failing traffic looks.
    pub failing_looks: u32,
    /// When the traffic gate last looked.
    pub last_look_ms: u64,
    /// Each proxy's traffic over the history window before the rollout began: the baseline
    /// when no baseline cohort is left. Saved with the rollout, so a restart keeps it.
    #[serde(default)]
    pub history: BTreeMap<String, Totals>,
}

/// A version that is never pushed again on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The version.
    pub release: Release,
    /// Why.
    pub reason: String,
    /// When.
    pub at_ms: u64,
}

/// One filter's rollout state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The version every proxy falls back to.
    pub last_good: Option<Release>,
    /// The rollout in progress.
    pub rollout: Option<Rollout>,
    /// The next version, waiting for the current rollout to end.
    pub queued: Option<Release>,
    /// Bad versions by version label.
    pub quarantine: BTreeMap<String, Quarantined>,
    /// Rollbacks so far.
    pub rollbacks: u64,
}

impl PluginRecord {
    /// The version the fleet is moving to: the rollout's target, else the last good.
    pub fn desired(&self) -> Option<&Release> {
        self.rollout
            .as_ref()
            .map(|r| &r.to)
            .or(self.last_good.as_ref())
    }
}

/// One proxy's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The version each filter should run, by filter.
    pub desired: BTreeMap<String, String>,
    /// The version it ACKed, by filter.
    pub acked: BTreeMap<String, String>,
    /// Its last NACK by filter: (version, Envoy's message).
    pub last_nack: BTreeMap<String, (String, String)>,
    /// The version it ACKed and then reported loading (`config_reload` moved, no load error,
    /// after the version was sent), by filter.
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
}

/// One entry of the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Its place in the log.
    pub seq: u64,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// The filter.
    pub plugin: String,
    /// The rollout.
    pub rollout: String,
    /// The last good version.
    pub from: Option<String>,
    /// The new version.
    pub to: String,
    /// The stage it was in.
    pub stage: Option<Stage>,
    /// What was done: start, queue, advance, promote, rollback, pause, resume, look, retry.
    pub action: String,
    /// The gate, for a rollback.
    pub gate: Option<Gate>,
    /// Why.
    pub reason: String,
    /// How many proxies the canary cohort holds.
    #[serde(default)]
    pub canary_size: usize,
    /// The canary cohort (the first 50 by name).
    pub canary: Vec<String>,
    /// The baseline cohort (the first 50 by name).
    pub baseline: Vec<String>,
    /// Raw canary counter deltas the look read.
    pub canary_totals: Option<Totals>,
    /// Raw baseline counter deltas the look read.
    pub baseline_totals: Option<Totals>,
    /// What the baseline was.
    pub baseline_kind: Option<BaselineKind>,
}

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

    /// The plugins as last saved (empty on first start). See [`envelope::resolve`] for when
    /// it refuses.
    pub fn load_plugins(&self) -> Result<BTreeMap<String, PluginRecord>, Error> {
        let path = self.state_path();
        let loaded = envelope::load(&path)?;
        let (generation, plugins) = envelope::resolve(&path, loaded, self.store_has_artifacts)?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(plugins)
    }

    /// The nodes as last saved. They are what proxies reported and are learned again when
    /// they reconnect, so a damaged `nodes.json` is logged and started over, not fatal.
    pub fn load_nodes(&self) -> Result<BTreeMap<String, NodeRecord>, Error> {
        let path = self.dir.join("nodes.json");
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(file = %path.display(), error = %err,
                    "node state unreadable; it is learned again as proxies reconnect");
                BTreeMap::new()
            })),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(Error::io("reading", &path)(err)),
        }
    }

    /// Saves the plugins durably as the next generation, keeping the previous one.
    pub fn save_plugins(&self, plugins: &BTreeMap<String, PluginRecord>) -> Result<(), Error> {
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let saved_ms = crate::ingest::unix_ms();
        envelope::save(&self.state_path(), generation, saved_ms, plugins)?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    /// The generation last loaded or saved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Notes that the control plane was up and watching at `now_ms` (`<dir>/alive`; written
    /// about once a second, not fsynced: a lost write only makes the next start count a
    /// little more of the downtime as up time).
    pub fn mark_alive(&self, now_ms: u64) -> Result<(), Error> {
        let path = self.dir.join("alive");
        let tmp = self.dir.join("alive.tmp");
        fs::write(&tmp, now_ms.to_string())
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(Error::io("writing", &path))
    }

    /// When the control plane was last known up and watching (the `alive` mark).
    pub fn last_alive_ms(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("alive"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    }

    /// Saves the nodes durably.
    pub fn save_nodes(&self, nodes: &BTreeMap<String, NodeRecord>) -> Result<(), Error> {
        // Compact: with thousands of proxies this is written up to once a second.
        let path = self.dir.join("nodes.json");
        replace_synced(
            &path,
            &path.with_extension("json.tmp"),
            &serde_json::to_vec(nodes)?,
        )
    }

    /// Appends one decision and fsyncs it.
    pub fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        self.log.append(decision)
    }

    /// The highest decision sequence number logged (0 for none).
    pub fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    /// The most recent decisions (bounded; the full log is on disk), oldest first.
    pub fn decisions(&self) -> impl DoubleEndedIterator<Item = &Decision> {
        self.log.recent()
    }
}

pub mod envelope;
pub mod log;

#[cfg(test)]
mod tests;
