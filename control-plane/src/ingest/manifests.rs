//! Ingest when plugin manifests govern: a build (`<name>.wasm`, `lib<name>.so`) is checked and
//! stored once, then every plugin whose `spec.artifact` matches it picks its build, runs the
//! pre-flight with its own configuration and fixtures, and publishes. A manifest change does
//! the same for that plugin. A refusal leaves the plugin as it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Ingest, IngestOutcome, unix_ms};
use crate::Error;
use crate::artifact::ArtifactKind;
use crate::catalog::Catalog;
use crate::manifest::{Named, PluginSpec, preferred_kind};
use crate::registry::{PluginStatus, PublishedArtifact, resource_version, settings_sha256};

impl Ingest {
    /// A build arrived while manifests govern.
    pub(super) fn managed_artifact(
        &self,
        path: &Path,
        name: String,
        kind: ArtifactKind,
        sha256: String,
        bytes: &[u8],
    ) -> Result<IngestOutcome, Error> {
        let catalog = self.catalog();
        let plugins: Vec<&Named<PluginSpec>> = catalog
            .plugins
            .values()
            .filter(|p| p.spec.kind.allows(kind) && matches(&p.spec.artifact, &name))
            .collect();
        let refused = |reason: String| {
            for plugin in &plugins {
                self.reject(path, plugin.name.clone(), sha256.clone(), reason.clone());
            }
            tracing::warn!(build = %name, %sha256, %reason, "build refused");
            IngestOutcome::Rejected {
                name: name.clone(),
                sha256: sha256.clone(),
                reason: reason.clone(),
            }
        };
        if let Some(reason) = self.store.rejection(&sha256) {
            return Ok(refused(format!("refused before: {reason}")));
        }
        let signatures = match self.admit_signed(path, &sha256, bytes, &plugins) {
            Ok(signatures) => signatures,
            Err(reason) => return Ok(refused(reason)),
        };
        let facts = match self.check_structure(kind, &sha256, bytes)? {
            Ok(facts) => facts,
            Err(reason) => return Ok(refused(reason)),
        };
        let stored = self.store.put(&sha256, kind, bytes)?;
        tracing::info!(build = %name, %sha256, path = %stored.display(), "stored");
        self.registry().add_build(
            &name,
            PublishedArtifact {
                kind,
                sha256,
                path: stored,
                envoy_version: facts.envoy_version,
                signers: Vec::new(),
                signatures,
            },
        );
        let mut outcome = IngestOutcome::Stored { name };
        for plugin in plugins {
            outcome = match self.place(plugin, &catalog)? {
                Placed::Done(outcome) => outcome,
                Placed::Ready(name) => self.publish(&name),
            };
        }
        Ok(outcome)
    }

    /// Whether a build may be stored: some plugin it is for (or, with none yet, the global
    /// policy) accepts its signatures. Its signature texts, for each plugin's own check when
    /// it is placed; or the refusal, when none accepts.
    fn admit_signed(
        &self,
        path: &Path,
        sha256: &str,
        bytes: &[u8],
        plugins: &[&Named<PluginSpec>],
    ) -> Result<Vec<String>, String> {
        let policies: Vec<_> = match plugins.is_empty() {
            true => vec![self.global_policy()],
            false => plugins.iter().map(|p| self.policy_for(&p.spec)).collect(),
        };
        // Read once, kept for the plugins placed later whatever the policies now.
        let signatures = self.read_signatures(path)?;
        let mut refusal = None;
        for policy in &policies {
            let Some(policy) = policy else {
                return Ok(signatures);
            };
            match policy.verify(bytes, &signatures) {
                Ok(signers) => {
                    tracing::info!(path = %path.display(), %sha256, ?signers, "signatures verified");
                    return Ok(signatures);
                }
                Err(reason) => refusal = refusal.or(Some(reason)),
            }
        }
        Err(refusal.unwrap_or_default())
    }

    /// `artifact` checked against the signers `spec` requires: the ids of those that signed
    /// it (empty when none are required), or why the plugin may not run it.
    fn signers_for(
        &self,
        spec: &PluginSpec,
        artifact: &PublishedArtifact,
    ) -> Result<Result<Vec<String>, String>, Error> {
        // A built-in filter has no bytes to sign; its manifest is what is trusted.
        let policy = self
            .policy_for(spec)
            .filter(|_| artifact.kind != ArtifactKind::Builtin);
        let Some(policy) = policy else {
            return Ok(Ok(Vec::new()));
        };
        let bytes = fs::read(&artifact.path)
            .map_err(Error::io("reading stored artifact", &artifact.path))?;
        Ok(policy.verify(&bytes, &artifact.signatures))
    }

    /// The manifests changed: every plugin in `catalog` takes its settings and build, and
    /// the engine takes the placement and the new releases in one step (one save, each proxy
    /// served once). Returns what became of each plugin.
    pub fn apply_catalog(&self, catalog: Arc<Catalog>) -> Result<Vec<IngestOutcome>, Error> {
        *self
            .manifests
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&catalog);
        let gone: Vec<String> = self
            .registry()
            .plugins()
            .filter(|p| p.manifest.is_some() && !catalog.plugins.contains_key(&p.name))
            .map(|p| p.name.clone())
            .collect();
        for name in gone {
            tracing::info!(plugin = %name, "manifest removed: the plugin leaves every chain");
            self.registry().set_manifest(&name, None);
        }
        let mut outcomes = Vec::new();
        let mut releases = Vec::new();
        for plugin in catalog.plugins.values() {
            match self.place(plugin, &catalog)? {
                Placed::Done(outcome) => outcomes.push(outcome),
                Placed::Ready(name) => match self.registry().release(&name) {
                    Some(release) => releases.push((name, release)),
                    None => outcomes.push(IngestOutcome::Stored { name }),
                },
            }
        }
        let labels: Vec<(String, String)> = releases
            .iter()
            .map(|(_, r)| (r.version.clone(), r.sha256.clone()))
            .collect();
        let results =
            self.engine()
                .apply_manifests(catalog, self.mode.governs(), releases, unix_ms());
        for ((name, result), (version, sha256)) in results.into_iter().zip(labels) {
            outcomes.push(self.published(&name, version, sha256, result));
        }
        Ok(outcomes)
    }

    /// Gives `plugin` its manifest's settings and its build; runs the pre-flight when either
    /// changed. Ready when the registry holds a new release for the engine.
    fn place(&self, plugin: &Named<PluginSpec>, catalog: &Catalog) -> Result<Placed, Error> {
        let name = plugin.name.clone();
        let spec = &plugin.spec;
        let current = self.registry().get_or_default(&name);
        let mut candidate = self.candidate(plugin, catalog, &current);
        let Some(mut artifact) = candidate.artifact.clone() else {
            self.registry().commit(candidate);
            tracing::info!(plugin = %name, artifact = %spec.artifact, "waiting for a build");
            return Ok(Placed::Done(IngestOutcome::Stored { name }));
        };
        let source = PathBuf::from(candidate.manifest.clone().unwrap_or_default());
        match self.signers_for(spec, &artifact)? {
            Ok(signers) => artifact.signers = signers,
            Err(reason) => {
                let sha256 = artifact.sha256;
                return Ok(Placed::Done(self.reject(&source, name, sha256, reason)));
            }
        }
        candidate.artifact = Some(artifact.clone());
        if candidate == current && self.engine().published(&name).0.is_some() {
            return Ok(Placed::Done(IngestOutcome::Unchanged {
                name,
                sha256: artifact.sha256,
            }));
        }
        if let Err(reason) = self.limits.check_config(candidate.config_json.len()) {
            self.refusals.count(crate::refusals::Limit::ConfigBytes);
            return Ok(Placed::Done(self.reject(
                &source,
                name,
                artifact.sha256,
                reason,
            )));
        }
        let version = resource_version(&artifact.sha256, &candidate.config_sha256);
        if let Some(reason) = self.quarantined(&name, &version) {
            return Ok(Placed::Done(self.reject(
                &source,
                name,
                artifact.sha256,
                reason,
            )));
        }
        if let Some(reason) = self.preflight_candidate(&name, &candidate, &artifact)? {
            // The same refusal on every manifest reload is reported once.
            let told = current
                .last_rejection
                .as_ref()
                .is_some_and(|r| r.sha256 == artifact.sha256 && r.reason == reason);
            if told {
                let sha256 = artifact.sha256;
                return Ok(Placed::Done(IngestOutcome::Rejected {
                    name,
                    sha256,
                    reason,
                }));
            }
            return Ok(Placed::Done(self.reject(
                &source,
                name,
                artifact.sha256,
                reason,
            )));
        }
        self.registry().commit(candidate);
        Ok(Placed::Ready(name))
    }

    /// What `plugin` would be from its manifest: `current` with the manifest's settings and
    /// the build it picks.
    fn candidate(
        &self,
        plugin: &Named<PluginSpec>,
        catalog: &Catalog,
        current: &PluginStatus,
    ) -> PluginStatus {
        let spec = &plugin.spec;
        let mut candidate = current.clone();
        candidate.config_json = spec.configuration();
        candidate.failure_policy = spec.failure_policy;
        candidate.vm = spec.vm_settings();
        candidate.config_sha256 =
            settings_sha256(&candidate.config_json, spec.failure_policy, &candidate.vm);
        candidate.fixtures = spec.fixtures.len();
        candidate.fixture_list = spec.fixtures.clone();
        candidate.has_schema = spec.schema.is_some();
        candidate.schema = spec.schema.clone();
        candidate.manifest = manifest_file(catalog, &plugin.name);
        if let Some(builtin) = &spec.envoy_filter {
            // Its typed config is both what the filter is and what it is given.
            candidate.config_json = builtin.typed_config_json();
            candidate.config_sha256 =
                settings_sha256(&candidate.config_json, spec.failure_policy, &candidate.vm);
            candidate.artifact = Some(super::builtin::artifact(&candidate.config_json));
            return candidate;
        }
        let prefer = preferred_kind(spec, self.prefer);
        candidate.artifact =
            self.registry()
                .choose_build(&spec.artifact, |k| spec.kind.allows(k), prefer);
        candidate
    }

    /// Runs the pre-flight of the candidate's build with its inputs; the reason when refused
    /// (now, or before with the same inputs).
    fn preflight_candidate(
        &self,
        name: &str,
        candidate: &PluginStatus,
        artifact: &PublishedArtifact,
    ) -> Result<Option<String>, Error> {
        let (sha, config) = (&artifact.sha256, &candidate.config_json);
        if let Some(reason) = self.refused_before(sha, config, Some(candidate)) {
            return Ok(Some(reason));
        }
        if artifact.kind == ArtifactKind::Builtin {
            return self.check_builtin(name, artifact, config);
        }
        if self.preflight.is_none() || artifact.kind != ArtifactKind::Wasm {
            return Ok(None);
        }
        let wasm = fs::read(&artifact.path)
            .map_err(Error::io("reading stored artifact", &artifact.path))?;
        self.run_preflight(name, artifact.kind, sha, &wasm, config, Some(candidate))
    }

    fn catalog(&self) -> Arc<Catalog> {
        let catalog = self.manifests.read();
        Arc::clone(&catalog.unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// What placing a plugin came to.
enum Placed {
    /// Nothing for the engine: unchanged, refused, or waiting for a build.
    Done(IngestOutcome),
    /// The registry holds a new release of the plugin for the engine.
    Ready(String),
}

/// Whether build `name` matches a plugin's `spec.artifact` (a name or a glob).
fn matches(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

fn manifest_file(catalog: &Catalog, plugin: &str) -> Option<String> {
    catalog
        .files
        .values()
        .find(|f| {
            f.in_force.as_ref().is_some_and(|(kind, name)| {
                *kind == crate::manifest::ManifestKind::Plugin && name == plugin
            })
        })
        .map(|f| f.file.clone())
}

#[cfg(test)]
mod tests;
