//! A plugin's rollout record as it is saved: its releases, the rollout in progress, its
//! quarantine, and the decision-log entry format. Plain data: the runtime persists it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::decide::{BaselineKind, Gate, Stage};
use super::traffic::Totals;
use crate::artifact::ArtifactKind;
use crate::manifest::{FailurePolicy, VmSettings};

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
    /// The ids of the keys that signed it, when signatures are required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// What its Wasm VM is started with.
    #[serde(default, skip_serializing_if = "VmSettings::is_default")]
    pub vm: VmSettings,
}

impl Release {
    /// A Wasm release whose sha starts with `tag` and whose configuration is `{}`: for tests
    /// of rollouts, here and in the runtime.
    #[doc(hidden)]
    pub fn for_tests(tag: &str) -> Self {
        let sha = format!("{tag}{}", "0".repeat(63));
        Self {
            version: format!("{sha}:cfg"),
            sha256: sha,
            kind: ArtifactKind::Wasm,
            path: PathBuf::from(format!("/store/{tag}.wasm")),
            config_json: "{}".into(),
            envoy_version: None,
            failure_policy: FailurePolicy::default(),
            signers: Vec::new(),
            vm: VmSettings::default(),
        }
    }

    /// What a bootstrap's slot runs once its plugin is gone from a proxy (removed, or its
    /// first version rolled back): Envoy's header mutation with no mutations, the slot's own
    /// default, as a new version. State-of-the-world ECDS cannot take a filter configuration
    /// back, so a slot is handed this instead of nothing.
    pub fn pass_through() -> Self {
        let config_json = PASS_THROUGH.to_string();
        let sha256 = crate::digest::sha256_hex(config_json.as_bytes());
        Self {
            version: format!("{sha256}:pass-through"),
            sha256,
            kind: ArtifactKind::Builtin,
            path: PathBuf::new(),
            config_json,
            envoy_version: None,
            failure_policy: FailurePolicy::default(),
            signers: Vec::new(),
            vm: VmSettings::default(),
        }
    }

    /// Whether a proxy reporting `proxy_version` (`major.minor.patch`, if known) may run it.
    /// A module that declares no version, and a proxy that reports none, are not held back.
    pub fn runs_on(&self, proxy_version: Option<&str>) -> bool {
        match (&self.envoy_version, proxy_version) {
            (Some(built_for), Some(proxy)) => built_for == proxy,
            _ => true,
        }
    }
}

/// The typed config of [`Release::pass_through`].
const PASS_THROUGH: &str = r#"{"@type":"type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"}"#;

/// Why a rollout is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// The reason.
    pub reason: String,
    /// Paused by a person, or for one (a failing first version its failure policy keeps):
    /// only `resume` lifts it. Otherwise it lifts once the cause clears.
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
    /// When its rollout started: from then until the rollback, proxies may have served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
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
    /// The version label last published to the engine (`<artifact sha>:<config sha prefix>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// How many times ingest published a version.
    #[serde(default)]
    pub publishes: u64,
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
    /// With replicas, the term of the leader that took it (its writes are fenced by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
}
