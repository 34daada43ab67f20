//! What the control plane currently serves for each filter, and what it refused. Pure state.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::ArtifactKind;
use crate::digest::sha256_hex;
use crate::manifest::{FailurePolicy, VmSettings};
use crate::rollout::Release;

/// The configuration a filter gets when no `<name>.json` was given.
pub const DEFAULT_CONFIG: &str = "{}";

/// One plugin's inputs: the build it runs, its settings and pre-flight inputs, and its last
/// refusal. What was published from them, and what became of it, is the rollout engine's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginStatus {
    /// The filter (and ECDS resource) name.
    pub name: String,
    /// The build it runs (its artifact), if it has one yet.
    pub artifact: Option<PublishedArtifact>,
    /// The configuration, as compact JSON.
    pub config_json: String,
    /// sha256 of `config_json`.
    pub config_sha256: String,
    /// The last artifact or configuration refused for this filter.
    pub last_rejection: Option<RejectionRecord>,
    /// How many pre-flight fixtures it has (`<name>.fixtures.json`).
    pub fixtures: usize,
    /// Whether it ships a configuration schema (`<name>.schema.json`).
    pub has_schema: bool,
    /// The fixtures themselves.
    #[serde(skip)]
    pub fixture_list: Vec<meshplug_preflight::Fixture>,
    /// The schema itself.
    #[serde(skip)]
    pub schema: Option<serde_json::Value>,
    /// What a proxy does when the filter fails.
    pub failure_policy: FailurePolicy,
    /// What its Wasm VM is started with (a manifest's `rootId`, `vmId`, `vmConfig`).
    #[serde(skip_serializing_if = "VmSettings::is_default")]
    pub vm: VmSettings,
    /// The manifest file that defines it, when manifests govern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The last pre-flight it passed (this process only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightPass>,
}

/// A pre-flight a filter passed: which build with which configuration, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightPass {
    /// sha256 of the build.
    pub sha256: String,
    /// sha256 of the configuration it ran with.
    pub config_sha256: String,
    /// Fixtures run, all passed; 0 means the smoke request ran instead.
    pub fixtures_passed: usize,
    /// Compile time, µs.
    pub compile_us: u64,
    /// Start, configure and requests, µs.
    pub run_us: u64,
    /// The module's log lines.
    pub logs: Vec<String>,
}

/// The artifact a filter runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedArtifact {
    /// Its kind.
    pub kind: ArtifactKind,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Its path in the store.
    pub path: PathBuf,
    /// A dynamic module's Envoy version (from the module); only proxies on it receive it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_version: Option<String>,
    /// The ids of the keys whose signatures it passed with, when signatures are checked
    /// (the plugin's `spec.signers`, or `--trusted-key`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// The texts of the detached signatures it arrived with (`<file>.minisig`,
    /// `<file>.<label>.minisig`), checked against each plugin's signers when it is placed.
    #[serde(skip)]
    pub signatures: Vec<String>,
}

/// Why something was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionRecord {
    /// sha256 of what was refused.
    pub sha256: String,
    /// The file it came from.
    pub source: PathBuf,
    /// The reason.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// sha256 of what a filter is configured with: its configuration and, when not the
/// defaults, its failure policy and VM settings (so a filter that sets neither keeps the
/// digest of its configuration alone).
pub fn settings_sha256(
    config_json: &str,
    failure_policy: FailurePolicy,
    vm: &VmSettings,
) -> String {
    let mut text = config_json.to_string();
    if failure_policy != FailurePolicy::FailClosed {
        text.push_str(&format!("\nfailurePolicy: {failure_policy:?}"));
    }
    text.push_str(&vm.digest_lines());
    sha256_hex(text.as_bytes())
}

/// The version label of a resource built from an artifact and a configuration.
pub fn resource_version(artifact_sha: &str, config_sha: &str) -> String {
    format!("{artifact_sha}:{}", &config_sha[..config_sha.len().min(12)])
}

/// All filters by name, and (when manifests govern) every build seen, by build name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Registry {
    plugins: BTreeMap<String, PluginStatus>,
    #[serde(skip)]
    builds: BTreeMap<String, BTreeMap<ArtifactKind, (u64, PublishedArtifact)>>,
    #[serde(skip)]
    builds_seen: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets filter `name` (its build was deleted in folder mode).
    pub fn remove(&mut self, name: &str) -> Option<PluginStatus> {
        self.plugins.remove(name)
    }

    /// The filter `name`, if known.
    pub fn get(&self, name: &str) -> Option<&PluginStatus> {
        self.plugins.get(name)
    }

    /// All filters, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginStatus> {
        self.plugins.values()
    }

    fn entry(&mut self, name: &str) -> &mut PluginStatus {
        self.plugins
            .entry(name.to_string())
            .or_insert_with(|| PluginStatus {
                name: name.to_string(),
                artifact: None,
                config_json: DEFAULT_CONFIG.to_string(),
                config_sha256: sha256_hex(DEFAULT_CONFIG.as_bytes()),
                last_rejection: None,
                fixtures: 0,
                has_schema: false,
                fixture_list: Vec::new(),
                schema: None,
                failure_policy: FailurePolicy::default(),
                vm: VmSettings::default(),
                manifest: None,
                preflight: None,
            })
    }

    /// Records the pre-flight `name` passed.
    pub fn set_preflight(&mut self, name: &str, pass: PreflightPass) {
        self.entry(name).preflight = Some(pass);
    }

    /// Sets the artifact of `name`. Returns false when it already is its artifact.
    pub fn set_artifact(&mut self, name: &str, artifact: PublishedArtifact) -> bool {
        let plugin = self.entry(name);
        if plugin.artifact.as_ref() == Some(&artifact) {
            return false;
        }
        plugin.artifact = Some(artifact);
        true
    }

    /// Sets the configuration of `name` (compact JSON). Returns false when unchanged.
    pub fn set_config(&mut self, name: &str, config_json: String) -> bool {
        let plugin = self.entry(name);
        if plugin.config_json == config_json {
            return false;
        }
        plugin.config_sha256 = settings_sha256(&config_json, plugin.failure_policy, &plugin.vm);
        plugin.config_json = config_json;
        true
    }

    /// Records which manifest defines `name` (`None`: none does any more).
    pub fn set_manifest(&mut self, name: &str, file: Option<String>) {
        self.entry(name).manifest = file;
    }

    /// Sets the pre-flight fixtures of `name`. Returns false when unchanged.
    pub fn set_fixtures(&mut self, name: &str, fixtures: Vec<meshplug_preflight::Fixture>) -> bool {
        let plugin = self.entry(name);
        if plugin.fixture_list == fixtures {
            return false;
        }
        plugin.fixtures = fixtures.len();
        plugin.fixture_list = fixtures;
        true
    }

    /// Sets the configuration schema of `name`. Returns false when unchanged.
    pub fn set_schema(&mut self, name: &str, schema: serde_json::Value) -> bool {
        let plugin = self.entry(name);
        if plugin.schema.as_ref() == Some(&schema) {
            return false;
        }
        plugin.has_schema = true;
        plugin.schema = Some(schema);
        true
    }

    /// Replaces what `status` configures of its filter (artifact, configuration, pre-flight
    /// inputs, failure policy, manifest), keeping its last refusal.
    pub fn commit(&mut self, status: PluginStatus) {
        let plugin = self.entry(&status.name);
        plugin.artifact = status.artifact;
        plugin.config_json = status.config_json;
        plugin.config_sha256 = status.config_sha256;
        plugin.fixtures = status.fixtures;
        plugin.fixture_list = status.fixture_list;
        plugin.has_schema = status.has_schema;
        plugin.schema = status.schema;
        plugin.failure_policy = status.failure_policy;
        plugin.vm = status.vm;
        plugin.manifest = status.manifest;
    }

    /// The filter `name` as it is, or a fresh one.
    pub fn get_or_default(&mut self, name: &str) -> PluginStatus {
        self.entry(name).clone()
    }

    /// Records a checked and stored build of `name` (`<name>.wasm`, `lib<name>.so`).
    pub fn add_build(&mut self, name: &str, build: PublishedArtifact) {
        self.builds_seen += 1;
        let seq = self.builds_seen;
        let kinds = self.builds.entry(name.to_string()).or_default();
        if kinds.get(&build.kind).is_some_and(|(_, b)| *b == build) {
            return;
        }
        kinds.insert(build.kind, (seq, build));
    }

    /// The build a plugin runs: among builds whose name matches `pattern` (a name or glob) and
    /// whose kind `allowed` admits, the newest of kind `prefer` if there is one, else the
    /// newest of any.
    pub fn choose_build(
        &self,
        pattern: &str,
        allowed: impl Fn(ArtifactKind) -> bool,
        prefer: ArtifactKind,
    ) -> Option<PublishedArtifact> {
        let pattern = glob::Pattern::new(pattern).ok()?;
        let candidates: Vec<&(u64, PublishedArtifact)> = self
            .builds
            .iter()
            .filter(|(name, _)| pattern.matches(name))
            .flat_map(|(_, kinds)| kinds.values())
            .filter(|(_, build)| allowed(build.kind))
            .collect();
        let newest = |of: &dyn Fn(&PublishedArtifact) -> bool| {
            candidates
                .iter()
                .filter(|(_, b)| of(b))
                .max_by_key(|(seq, _)| *seq)
                .map(|(_, b)| b.clone())
        };
        newest(&|b| b.kind == prefer).or_else(|| newest(&|_| true))
    }

    /// Records a refusal.
    pub fn reject(&mut self, name: &str, record: RejectionRecord) {
        self.entry(name).last_rejection = Some(record);
    }

    /// What to publish for `name` (its artifact with its configuration), once it has an
    /// artifact.
    pub fn release(&self, name: &str) -> Option<Release> {
        let plugin = self.plugins.get(name)?;
        let artifact = plugin.artifact.as_ref()?;
        Some(Release {
            version: resource_version(&artifact.sha256, &plugin.config_sha256),
            sha256: artifact.sha256.clone(),
            kind: artifact.kind,
            path: artifact.path.clone(),
            config_json: plugin.config_json.clone(),
            envoy_version: artifact.envoy_version.clone(),
            failure_policy: plugin.failure_policy,
            signers: artifact.signers.clone(),
            vm: plugin.vm.clone(),
        })
    }

    /// Takes back what was published before a restart: `release` (the version the engine
    /// serves) becomes `name`'s artifact and configuration, so a configuration refused while
    /// running is checked against it again instead of being taken as in force.
    pub fn resume(&mut self, name: &str, release: &Release) {
        let plugin = self.entry(name);
        plugin.artifact = Some(PublishedArtifact {
            kind: release.kind,
            sha256: release.sha256.clone(),
            path: release.path.clone(),
            envoy_version: release.envoy_version.clone(),
            signers: release.signers.clone(),
            signatures: Vec::new(),
        });
        plugin.failure_policy = release.failure_policy;
        plugin.vm = release.vm.clone();
        plugin.config_sha256 =
            settings_sha256(&release.config_json, release.failure_policy, &release.vm);
        plugin.config_json = release.config_json.clone();
    }
}

#[cfg(test)]
mod tests;
