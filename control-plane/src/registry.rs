//! What the control plane currently serves for each filter, and what it refused. Pure state.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::ArtifactKind;
use crate::rollout::Release;
use crate::store::sha256_hex;

/// The configuration a filter gets when no `<name>.json` was given.
pub const DEFAULT_CONFIG: &str = "{}";

/// One filter, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginStatus {
    /// The filter (and ECDS resource) name.
    pub name: String,
    /// The published artifact, if any.
    pub artifact: Option<PublishedArtifact>,
    /// The configuration, as compact JSON.
    pub config_json: String,
    /// sha256 of `config_json`.
    pub config_sha256: String,
    /// The ECDS resource version label last published (`<artifact sha>:<config sha prefix>`).
    pub resource_version: Option<String>,
    /// How many times a changed resource was published.
    pub publishes: u64,
    /// The last artifact or configuration refused for this filter.
    pub last_rejection: Option<RejectionRecord>,
    /// How many pre-flight fixtures it has (`<name>.fixtures.json`).
    pub fixtures: usize,
    /// Whether it ships a configuration schema (`<name>.schema.json`).
    pub has_schema: bool,
    /// The fixtures themselves.
    #[serde(skip)]
    pub fixture_list: Vec<sandbox::Fixture>,
    /// The schema itself.
    #[serde(skip)]
    pub schema: Option<serde_json::Value>,
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

/// The version label of a resource built from an artifact and a configuration.
pub fn resource_version(artifact_sha: &str, config_sha: &str) -> String {
    format!("{artifact_sha}:{}", &config_sha[..config_sha.len().min(12)])
}

/// All filters by name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Registry {
    plugins: BTreeMap<String, PluginStatus>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
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
                resource_version: None,
                publishes: 0,
                last_rejection: None,
                fixtures: 0,
                has_schema: false,
                fixture_list: Vec::new(),
                schema: None,
            })
    }

    /// Sets the artifact of `name`. Returns false when it is already the one published.
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
        plugin.config_sha256 = sha256_hex(config_json.as_bytes());
        plugin.config_json = config_json;
        true
    }

    /// Sets the pre-flight fixtures of `name`. Returns false when unchanged.
    pub fn set_fixtures(&mut self, name: &str, fixtures: Vec<sandbox::Fixture>) -> bool {
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
        })
    }

    /// Records that `version` of `name` was published.
    pub fn mark_published(&mut self, name: &str, version: String) {
        let plugin = self.entry(name);
        plugin.resource_version = Some(version);
        plugin.publishes += 1;
    }
}

#[cfg(test)]
mod tests;
