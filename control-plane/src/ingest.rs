//! Turns a settled file in the artifacts folder into a published ECDS resource, or a recorded
//! refusal. Blocking file I/O: run it off the async workers.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::artifact::{ArtifactKind, WatchedFile, classify};
use crate::catalog::SharedCatalog;
use crate::check::{ArtifactFacts, Limits, check_artifact};
use crate::mode::Mode;
use crate::preflight;
use meshplug_core::config_shape::ConfigShape;
use meshplug_core::signature::TrustedKey;

/// A `.minisig` is a few hundred bytes; anything larger is not one.
const SIGNATURE_MAX_BYTES: u64 = 64 * 1024;
use crate::refusals::{Limit, Refusals};
use crate::registry::{
    DEFAULT_CONFIG, PluginStatus, PublishedArtifact, Registry, RejectionRecord, resource_version,
};
use crate::rollout::{Engine, ReleaseOutcome};
use crate::store::{Store, sha256_hex};
use read::{ReadOutcome, read_checked};

/// What handling one file came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Not a file meshplug acts on.
    Ignored,
    /// The file is gone or still changing; it will be seen again.
    NotSettled,
    /// Same content as what is published: nothing to do.
    Unchanged {
        /// The filter.
        name: String,
        /// The content's sha256.
        sha256: String,
    },
    /// Refused, before any proxy saw it.
    Rejected {
        /// The filter.
        name: String,
        /// The content's sha256.
        sha256: String,
        /// Why.
        reason: String,
    },
    /// Stored, but not published yet (a configuration for a filter with no artifact yet).
    Stored {
        /// The filter.
        name: String,
    },
    /// The filter's build was deleted (folder mode): no proxy runs it any more.
    Removed {
        /// The filter.
        name: String,
    },
    /// A new version was handed to the rollout engine.
    Published {
        /// The filter.
        name: String,
        /// The resource's version label.
        version: String,
        /// Whether its rollout started or queued behind the one in progress.
        rollout: ReleaseOutcome,
    },
}

/// The ingest stage: store, checks, registry and the snapshot it publishes into.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// The artifacts folder (canonical): links are followed only inside it.
    pub folder: PathBuf,
    /// Where artifacts are kept.
    pub store: Store,
    /// Check limits.
    pub limits: Limits,
    /// What is published.
    pub registry: Arc<Mutex<Registry>>,
    /// The rollout engine every new version goes to.
    pub engine: Arc<Mutex<Engine>>,
    /// The pre-flight sandbox; `None` turns pre-flight off.
    pub preflight: Option<Arc<meshplug_preflight::Preflight>>,
    /// The kind a filter runs when both its `.wasm` and its `.so` are in the folder.
    pub prefer: ArtifactKind,
    /// Where plugins are declared. When manifests govern (`meshplug serve --plugins`),
    /// builds are matched to plugins by their `spec.artifact`, and `<name>.json`,
    /// `<name>.fixtures.json` and `<name>.schema.json` in the artifacts folder are ignored.
    pub mode: Mode,
    /// The plugin manifests in force (empty in [`Mode::Folder`]).
    pub manifests: SharedCatalog,
    /// Held by each ingest step (a file, a manifest reload), so they run one at a time.
    pub serial: Arc<Mutex<()>>,
    /// Counts inputs refused by a limit.
    pub refusals: Arc<Refusals>,
    /// Keys builds must be signed with (`--trusted-key`); empty: signatures are not checked.
    pub trusted_keys: Arc<Vec<TrustedKey>>,
    /// The Envoy binary that validates built-in filters (`spec.envoyFilter`); `None`: `envoy`
    /// on `PATH`.
    pub envoy: Option<PathBuf>,
}

impl Ingest {
    /// Handles one settled path. A failure (a full disk, say) is also recorded as the filter's
    /// last refusal, so it shows in `/api/v1/plugins` and `meshplug plugins`, not only the log.
    pub fn handle(&self, path: &Path) -> Result<IngestOutcome, Error> {
        let _serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.handle_file(path);
        if let (Err(err), Some(watched)) = (&result, classify(path)) {
            let reason = format!("not ingested: {err}; tried again when the file changes");
            self.reject(path, watched.name().to_string(), String::new(), reason);
        }
        result
    }

    fn handle_file(&self, path: &Path) -> Result<IngestOutcome, Error> {
        let Some(watched) = classify(path) else {
            return Ok(IngestOutcome::Ignored);
        };
        if let WatchedFile::Signature { build, .. } = &watched {
            // A signature arrived: its build is looked at again, with it.
            let build = path.with_file_name(build);
            return match build.is_file() {
                true => self.handle_file(&build),
                false => Ok(IngestOutcome::Ignored),
            };
        }
        let limit = match watched {
            WatchedFile::Artifact { .. } => self.limits.max_artifact_bytes,
            _ => self.limits.max_config_bytes,
        };
        let bytes = match read_checked(path, &self.folder, limit)? {
            ReadOutcome::Bytes(bytes) => bytes,
            // Folder mode: a file still gone after its quiet was deleted.
            ReadOutcome::NotSettled if !self.mode.governed() && gone(path) => {
                return self.removed(path, watched);
            }
            ReadOutcome::NotSettled => return Ok(IngestOutcome::NotSettled),
            ReadOutcome::Refused(reason) => {
                self.refusals.count(Limit::ArtifactFile);
                let name = watched.name().to_string();
                if !self.mode.governed() {
                    return Ok(self.reject(path, name, String::new(), reason));
                }
                // With manifests a build name is not a plugin: there is no record to keep.
                tracing::warn!(path = %path.display(), %reason, "build refused");
                let sha256 = String::new();
                return Ok(IngestOutcome::Rejected {
                    name,
                    sha256,
                    reason,
                });
            }
        };
        let sha256 = sha256_hex(&bytes);
        tracing::info!(path = %path.display(), %sha256, size = bytes.len(), "hashed");
        if self.mode.governed() {
            return match watched {
                WatchedFile::Artifact { name, kind } => {
                    self.managed_artifact(path, name, kind, sha256, &bytes)
                }
                _ => {
                    tracing::warn!(path = %path.display(),
                        "ignored: with plugin manifests, configuration, fixtures and schema live in the manifest");
                    Ok(IngestOutcome::Ignored)
                }
            };
        }
        match watched {
            WatchedFile::Artifact { name, kind } => self.artifact(path, name, kind, sha256, &bytes),
            WatchedFile::Config { name, shape } => self.config(path, (name, shape), sha256, &bytes),
            WatchedFile::Fixtures { name } => self.fixtures(path, name, sha256, &bytes),
            WatchedFile::Schema { name } => self.schema(path, name, sha256, &bytes),
            WatchedFile::Signature { .. } => Ok(IngestOutcome::Ignored),
        }
    }

    /// After a restart in folder mode: every filter the engine serves takes back the artifact
    /// and configuration it was published with, before the folder is read again.
    pub fn resume_published(&self) {
        if self.mode.governed() {
            return;
        }
        let served: Vec<(String, crate::rollout::Release)> = self
            .engine()
            .plugins()
            .iter()
            .filter_map(|(name, record)| Some((name.clone(), record.desired()?.clone())))
            .collect();
        let mut registry = self.registry();
        for (name, release) in served {
            tracing::info!(plugin = %name, version = %release.version, "resuming the published version");
            registry.resume(&name, &release);
        }
    }

    fn artifact(
        &self,
        path: &Path,
        name: String,
        kind: ArtifactKind,
        sha256: String,
        bytes: &[u8],
    ) -> Result<IngestOutcome, Error> {
        // Ingest runs one file at a time, so this view of the filter holds until it publishes.
        let plugin = self.registry().get(&name).cloned();
        let current = plugin.as_ref().and_then(|p| p.artifact.as_ref());
        if current.is_some_and(|a| a.sha256 == sha256) {
            return Ok(IngestOutcome::Unchanged { name, sha256 });
        }
        let published_kind = current.map(|a| a.kind);
        let config_json = plugin
            .as_ref()
            .map_or(DEFAULT_CONFIG, |p| &p.config_json)
            .to_string();
        let config_sha = plugin.as_ref().map_or_else(
            || sha256_hex(DEFAULT_CONFIG.as_bytes()),
            |p| p.config_sha256.clone(),
        );
        if let Some(reason) = self.quarantined(&name, &resource_version(&sha256, &config_sha)) {
            return Ok(self.reject(path, name, sha256, reason));
        }
        if let Some(reason) = self.refused_before(&sha256, &config_json, plugin.as_ref()) {
            return Ok(self.reject(path, name, sha256, reason));
        }
        let policy = self.global_policy();
        let signed = match self.check_signature(path, &sha256, bytes, policy.as_ref()) {
            Ok(signed) => signed,
            Err(reason) => return Ok(self.reject(path, name, sha256, reason)),
        };
        let facts = match self.check_structure(kind, &sha256, bytes)? {
            Ok(facts) => facts,
            Err(reason) => return Ok(self.reject(path, name, sha256, reason)),
        };
        let verdict =
            self.run_preflight(&name, kind, &sha256, bytes, &config_json, plugin.as_ref())?;
        if let Some(reason) = verdict {
            return Ok(self.reject(path, name, sha256, reason));
        }
        let stored = self.store.put(&sha256, kind, bytes)?;
        tracing::info!(plugin = %name, %sha256, path = %stored.display(), "stored");
        if kind != self.prefer && published_kind == Some(self.prefer) {
            tracing::info!(plugin = %name, %sha256, ?kind, prefer = ?self.prefer,
                "stored, not deployed: the filter runs its preferred kind (--prefer-kind)");
            return Ok(IngestOutcome::Stored { name });
        }
        let artifact = PublishedArtifact {
            kind,
            sha256,
            path: stored,
            envoy_version: facts.envoy_version,
            signers: signed.signers,
            signatures: signed.signatures,
        };
        self.registry().set_artifact(&name, artifact);
        Ok(self.publish(&name))
    }

    /// `<name>.json` or `<name>.config` (one rule: [`ConfigShape`]); both there is a refusal
    /// naming both, and the one in force stays.
    fn config(
        &self,
        path: &Path,
        (name, shape): (String, ConfigShape),
        sha256: String,
        bytes: &[u8],
    ) -> Result<IngestOutcome, Error> {
        if let Err(reason) = self.limits.check_config(bytes.len()) {
            self.refusals.count(Limit::ConfigBytes);
            return Ok(self.reject(path, name, sha256, reason));
        }
        let other = shape.other().file_name(&name);
        if self.folder.join(&other).exists() {
            let reason = format!(
                "both {} and {other} configure filter {name}: keep one (the configuration in \
                 force stays until then)",
                shape.file_name(&name)
            );
            return Ok(self.reject(path, name, sha256, reason));
        }
        let config = match shape.read(bytes) {
            Ok(text) => text,
            Err(reason) => return Ok(self.reject(path, name, sha256, reason)),
        };
        let plugin = self.registry().get(&name).cloned();
        if plugin.as_ref().is_some_and(|p| p.config_json == config) {
            return Ok(IngestOutcome::Unchanged { name, sha256 });
        }
        if let Some(refusal) = self.preflight_config(&name, &config, plugin.as_ref())? {
            return Ok(self.reject(path, name, sha256, refusal));
        }
        self.registry().set_config(&name, config);
        Ok(self.publish(&name))
    }

    /// Why `sha` with these inputs was refused before, if it was (a refusal of the module
    /// itself holds for any inputs).
    pub(crate) fn refused_before(
        &self,
        sha: &str,
        config_json: &str,
        plugin: Option<&PluginStatus>,
    ) -> Option<String> {
        let keys = preflight::lookup_keys(sha, config_json, plugin);
        let reason = keys.iter().find_map(|key| self.store.rejection(key))?;
        Some(format!("refused before: {reason}"))
    }

    /// The structural check of a build (size, Wasm framing, or the ELF checks); a refusal is
    /// remembered under its sha. `Err(reason)` when refused.
    pub(crate) fn check_structure(
        &self,
        kind: ArtifactKind,
        sha: &str,
        bytes: &[u8],
    ) -> Result<Result<ArtifactFacts, String>, Error> {
        match check_artifact(kind, bytes, self.limits) {
            Ok(facts) => Ok(Ok(facts)),
            Err(rejection) => {
                let reason = rejection.to_string();
                self.store.put_rejection(sha, &reason)?;
                Ok(Err(reason))
            }
        }
    }

    /// Runs the pre-flight of a Wasm build as filter `name` with `config_json` and `plugin`'s
    /// fixtures and schema, when the sandbox is on; a pass is logged, a refusal remembered.
    /// The reason when refused. A dynamic module is native code with full trust: it is never
    /// run in the control plane; its check is the ELF check.
    pub(crate) fn run_preflight(
        &self,
        name: &str,
        kind: ArtifactKind,
        sha: &str,
        bytes: &[u8],
        config_json: &str,
        plugin: Option<&PluginStatus>,
    ) -> Result<Option<String>, Error> {
        let Some(sandbox) = self
            .preflight
            .as_ref()
            .filter(|_| kind == ArtifactKind::Wasm)
        else {
            return Ok(None);
        };
        match preflight::run(sandbox, name, sha, bytes, config_json, plugin) {
            Ok(report) => {
                tracing::info!(plugin = %name, sha256 = %sha, fixtures = report.fixtures_passed,
                    compile_ms = report.compile_ms, run_ms = report.run_ms, "pre-flight passed");
                let pass = preflight::passed(sha, config_json, report);
                self.registry().set_preflight(name, pass);
                Ok(None)
            }
            Err(refusal) => {
                self.store.put_rejection(&refusal.key, &refusal.reason)?;
                Ok(Some(refusal.reason))
            }
        }
    }

    /// Runs the published artifact with a new configuration; the reason when it is refused.
    fn preflight_config(
        &self,
        name: &str,
        config_json: &str,
        plugin: Option<&PluginStatus>,
    ) -> Result<Option<String>, Error> {
        let wasm_artifact = plugin
            .and_then(|p| p.artifact.as_ref())
            .filter(|a| a.kind == ArtifactKind::Wasm);
        let (Some(sandbox), Some(artifact)) = (&self.preflight, wasm_artifact) else {
            return Ok(None);
        };
        let wasm = fs::read(&artifact.path)
            .map_err(Error::io("reading stored artifact", &artifact.path))?;
        match preflight::run(sandbox, name, &artifact.sha256, &wasm, config_json, plugin) {
            Ok(report) => {
                let pass = preflight::passed(&artifact.sha256, config_json, report);
                self.registry().set_preflight(name, pass);
                Ok(None)
            }
            Err(refusal) => Ok(Some(refusal.reason)),
        }
    }

    fn fixtures(
        &self,
        path: &Path,
        name: String,
        sha256: String,
        bytes: &[u8],
    ) -> Result<IngestOutcome, Error> {
        let fixtures = match meshplug_preflight::parse_fixtures(bytes) {
            Ok(fixtures) => fixtures,
            Err(err) => return Ok(self.reject(path, name, sha256, err)),
        };
        if self.registry().set_fixtures(&name, fixtures) {
            Ok(IngestOutcome::Stored { name })
        } else {
            Ok(IngestOutcome::Unchanged { name, sha256 })
        }
    }

    fn schema(
        &self,
        path: &Path,
        name: String,
        sha256: String,
        bytes: &[u8],
    ) -> Result<IngestOutcome, Error> {
        let schema = match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(schema) => schema,
            Err(err) => {
                let reason = format!("schema is not valid JSON: {err}");
                return Ok(self.reject(path, name, sha256, reason));
            }
        };
        if self.registry().set_schema(&name, schema) {
            Ok(IngestOutcome::Stored { name })
        } else {
            Ok(IngestOutcome::Unchanged { name, sha256 })
        }
    }

    /// Hands the filter's current artifact and configuration to the rollout engine.
    fn publish(&self, name: &str) -> IngestOutcome {
        let Some(release) = self.registry().release(name) else {
            return IngestOutcome::Stored {
                name: name.to_string(),
            };
        };
        let (version, sha256) = (release.version.clone(), release.sha256.clone());
        let outcome = self.engine().release(name, release, unix_ms());
        self.published(name, version, sha256, outcome)
    }

    /// Records what the engine did with `version` of `name`.
    fn published(
        &self,
        name: &str,
        version: String,
        sha256: String,
        outcome: Result<ReleaseOutcome, Error>,
    ) -> IngestOutcome {
        match outcome {
            Ok(rollout) => {
                tracing::info!(plugin = %name, %version, ?rollout, "published");
                IngestOutcome::Published {
                    name: name.to_string(),
                    version,
                    rollout,
                }
            }
            Err(err) => {
                let source = PathBuf::from(format!("<{name} current>"));
                self.reject(&source, name.to_string(), sha256, err.to_string())
            }
        }
    }

    /// Why `version` of `name` may not go out, if it is quarantined (the engine's check, the
    /// one message).
    pub(crate) fn quarantined(&self, name: &str, version: &str) -> Option<String> {
        let reason = self.engine().quarantined(name, version)?;
        Some(Error::quarantined(name, version, &reason).to_string())
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reject(&self, path: &Path, name: String, sha256: String, reason: String) -> IngestOutcome {
        tracing::warn!(plugin = %name, %sha256, path = %path.display(), %reason, "rejected");
        let record = RejectionRecord {
            sha256: sha256.clone(),
            source: PathBuf::from(path),
            reason: reason.clone(),
            at_unix_ms: unix_ms(),
        };
        self.registry().reject(&name, record);
        IngestOutcome::Rejected {
            name,
            sha256,
            reason,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether nothing is at `path` (not even a dangling link).
fn gone(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

mod builtin;
mod manifests;
pub mod read;
mod removal;
mod signatures;
pub use signatures::signature_paths;

#[cfg(test)]
mod tests;
