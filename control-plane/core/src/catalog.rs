//! The manifests in force: the result of reading the `plugins/` and `mesh/` folders again,
//! given what was in force before. Pure.
//!
//! A file that fails to parse, names something twice, or refers to a listener or cluster that
//! is not there is refused with a [`ManifestError`]; the version of that file that was in force
//! before stays in force (if it still fits). A file that is gone takes its manifest with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::manifest::{
    ClusterSpec, ListenerSpec, Manifest, ManifestError, ManifestKind, Named, PluginSpec, parse,
};

/// The catalog in force, shared by ingest, the admin API and the reload loop; replaced whole
/// on each reload, so readers take the `Arc` and never copy the catalog.
pub type SharedCatalog = std::sync::Arc<std::sync::RwLock<std::sync::Arc<Catalog>>>;

/// Every manifest in force, and the status of every file read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Plugins by name.
    pub plugins: BTreeMap<String, Named<PluginSpec>>,
    /// Listeners by name.
    pub listeners: BTreeMap<String, Named<ListenerSpec>>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Named<ClusterSpec>>,
    /// Each file's status, by file name.
    pub files: BTreeMap<String, FileStatus>,
    in_force: BTreeMap<String, Manifest>,
    /// The text of each manifest in force, by file.
    texts: BTreeMap<String, String>,
}

/// The catalog in force as replicas share it (`serve --store etcd://…`): the text of every
/// manifest in force, and every file's status. Read back with [`Catalog::from_record`], it is
/// the same catalog, so a follower places what the leader placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRecord {
    /// The text in force, by file.
    pub texts: BTreeMap<String, String>,
    /// Each file's status, by file name (the refusals the leader logged included).
    pub files: BTreeMap<String, FileStatus>,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStatus {
    /// The file.
    pub file: String,
    /// sha256 of the text read.
    pub sha256: String,
    /// The kind and name in force from this file, if any (the new version, or the previous
    /// one when the new one was refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_force: Option<(ManifestKind, String)>,
    /// Why the text read is not in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ManifestError>,
}

/// One file read from a watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// Its name, as errors show it (`plugins/authz.yaml`).
    pub file: String,
    /// Its text.
    pub text: String,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files whose text was refused.
    pub fn errors(&self) -> impl Iterator<Item = &ManifestError> {
        self.files.values().filter_map(|f| f.error.as_ref())
    }

    /// What replicas share of it.
    pub fn record(&self) -> CatalogRecord {
        CatalogRecord {
            texts: self.texts.clone(),
            files: self.files.clone(),
        }
    }

    /// The catalog `record` holds: its texts read again (they were in force together, so
    /// each is admitted as before), with the files' statuses as recorded.
    pub fn from_record(record: &CatalogRecord) -> Self {
        let scanned: Vec<ScannedFile> = record
            .texts
            .iter()
            .map(|(file, text)| ScannedFile {
                file: file.clone(),
                text: text.clone(),
            })
            .collect();
        let mut catalog = reconcile(&Catalog::new(), &scanned);
        catalog.files.clone_from(&record.files);
        catalog
    }
}

/// Reads `scanned` (every manifest file, both folders) given `previous`.
pub fn reconcile(previous: &Catalog, scanned: &[ScannedFile]) -> Catalog {
    let parsed: BTreeMap<&str, (&ScannedFile, Result<Manifest, ManifestError>)> = scanned
        .iter()
        .map(|s| (s.file.as_str(), (s, parse(&s.file, &s.text))))
        .collect();
    let mut next = Catalog::new();
    for kind in [
        ManifestKind::Cluster,
        ManifestKind::Listener,
        ManifestKind::Plugin,
    ] {
        for (file, (scan, result)) in &parsed {
            if next.files.contains_key(*file) {
                continue;
            }
            let fresh = result.as_ref().ok().filter(|m| m.kind() == kind);
            // The version in force before counts unless the file now holds another kind.
            let old = previous
                .in_force
                .get(*file)
                .filter(|m| m.kind() == kind && result.as_ref().map_or(true, |r| r.kind() == kind));
            let parse_error = result.as_ref().err().cloned();
            // A file that does not parse, with nothing before it, is reported in the last pass.
            let report_now = parse_error.is_some() && kind == ManifestKind::Plugin;
            if fresh.is_none() && old.is_none() && !report_now {
                continue;
            }
            let mut error = parse_error;
            let mut chosen = None;
            if let Some(manifest) = fresh {
                match next.admit(file, &scan.text, manifest, previous) {
                    Ok(()) => chosen = Some((manifest.clone(), scan.text.clone())),
                    Err(refusal) => error = Some(refusal),
                }
            }
            if chosen.is_none()
                && let Some(manifest) = old
                && next.admit(file, &scan.text, manifest, previous).is_ok()
            {
                let text = previous.texts.get(*file).cloned().unwrap_or_default();
                chosen = Some((manifest.clone(), text));
            }
            if chosen.is_none() && error.is_none() {
                continue;
            }
            next.files.insert(
                file.to_string(),
                FileStatus {
                    file: file.to_string(),
                    sha256: sha256_hex(scan.text.as_bytes()),
                    in_force: chosen
                        .as_ref()
                        .map(|(m, _)| (m.kind(), m.name().to_string())),
                    error,
                },
            );
            if let Some((manifest, text)) = chosen {
                next.insert(file, manifest, text);
            }
        }
    }
    next
}

impl Catalog {
    /// This catalog with only the manifests of `kinds` in force: every file in force with
    /// another kind is refused with `why` (folder mode reads clusters only from the artifacts
    /// folder). Use it where nothing of `kinds` refers to another kind.
    pub fn confine(self, kinds: &[ManifestKind], why: &str) -> Self {
        self.refuse_where(|m| !kinds.contains(&m.kind()), ("kind", "kind:"), &|m| {
            format!("{}: {why}", m.kind())
        })
    }

    /// This catalog without the manifests in force that `refused` picks: each one's file is
    /// refused at `field` (found by `needle`) with `why` of it. Nothing in force may refer to
    /// a refused manifest (use it for plugins, or kinds nothing refers to).
    pub fn refuse_where(
        mut self,
        refused: impl Fn(&Manifest) -> bool,
        (field, needle): (&str, &str),
        why: &dyn Fn(&Manifest) -> String,
    ) -> Self {
        let picked: Vec<(String, Manifest)> = self
            .in_force
            .iter()
            .filter(|(_, m)| refused(m))
            .map(|(f, m)| (f.clone(), m.clone()))
            .collect();
        for (file, manifest) in picked {
            let text = self.texts.remove(&file).unwrap_or_default();
            self.in_force.remove(&file);
            let error = ManifestError::at_value(&file, &text, field, needle, why(&manifest));
            if let Some(status) = self.files.get_mut(&file) {
                status.in_force = None;
                status.error = Some(error);
            }
            let name = manifest.name();
            match manifest.kind() {
                ManifestKind::Plugin => self.plugins.remove(name).map(|_| ()),
                ManifestKind::Listener => self.listeners.remove(name).map(|_| ()),
                ManifestKind::Cluster => self.clusters.remove(name).map(|_| ()),
            };
        }
        self
    }

    /// Whether `manifest` from `file` may join: its name is free and what it names exists.
    fn admit(
        &self,
        file: &str,
        text: &str,
        manifest: &Manifest,
        previous: &Catalog,
    ) -> Result<(), ManifestError> {
        let name = manifest.name();
        let owner = self
            .in_force
            .iter()
            .find(|(_, m)| m.kind() == manifest.kind() && m.name() == name)
            .map(|(f, _)| f.clone());
        // Two files, one name: the one that had it in force keeps it, else the first by name.
        let rival = owner.or_else(|| {
            previous
                .in_force
                .iter()
                .find(|(f, m)| {
                    f.as_str() != file && m.kind() == manifest.kind() && m.name() == name
                })
                .map(|(f, _)| f.clone())
        });
        if let Some(rival) = rival.filter(|r| r != file) {
            let message = format!("{} `{name}` is already defined in {rival}", manifest.kind());
            return Err(ManifestError::at_value(
                file,
                text,
                "metadata.name",
                "name:",
                message,
            ));
        }
        match manifest {
            Manifest::Listener(listener) => {
                for (i, cluster) in listener.spec.clusters() {
                    if !self.clusters.contains_key(cluster) {
                        let message = format!("no Cluster named `{cluster}`");
                        let field = format!("spec.routes[{i}].cluster");
                        return Err(ManifestError::at_value(
                            file, text, &field, cluster, message,
                        ));
                    }
                }
            }
            Manifest::Plugin(plugin) => {
                for (i, listener) in plugin.spec.listeners.iter().enumerate() {
                    if !self.listeners.contains_key(listener) {
                        let message = format!("no Listener named `{listener}`");
                        let field = format!("spec.listeners[{i}]");
                        return Err(ManifestError::at_value(
                            file, text, &field, listener, message,
                        ));
                    }
                }
                for (i, cluster) in plugin.spec.callouts.iter().enumerate() {
                    if !self.clusters.contains_key(cluster) {
                        let message = format!(
                            "plugin `{name}` calls cluster `{cluster}`, but no Cluster manifest \
                             declares it, so no proxy the plugin targets is served it"
                        );
                        let field = format!("spec.callouts[{i}]");
                        return Err(ManifestError::at_value(
                            file, text, &field, cluster, message,
                        ));
                    }
                }
            }
            Manifest::Cluster(_) => {}
        }
        Ok(())
    }

    fn insert(&mut self, file: &str, manifest: Manifest, text: String) {
        match &manifest {
            Manifest::Plugin(m) => {
                self.plugins.insert(m.name.clone(), (**m).clone());
            }
            Manifest::Listener(m) => {
                self.listeners.insert(m.name.clone(), m.clone());
            }
            Manifest::Cluster(m) => {
                self.clusters.insert(m.name.clone(), m.clone());
            }
        }
        self.in_force.insert(file.to_string(), manifest);
        self.texts.insert(file.to_string(), text);
    }
}

#[cfg(test)]
mod tests;
