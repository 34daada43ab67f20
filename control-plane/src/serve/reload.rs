//! Manifest reloads, the one path a manifest change takes, off the ingest path: the folders are
//! read and parsed on a blocking thread, then ingest places the catalog's plugins and hands the
//! engine the placement and the releases in one call (one ingest step at a time:
//! [`crate::ingest::Ingest::serial`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::catalog::{Catalog, reconcile};
use crate::ingest::Ingest;
use crate::manifest::{Manifest, ManifestKind};
use crate::manifest_watch::{self, ManifestWatcher};
use crate::mode::Mode;
use meshplug_core::rollout::placement::Governs;

/// Why a built-in filter is refused with `--plugins` alone.
const BUILTIN_NEEDS_MESH: &str = "a built-in Envoy filter needs `--mesh`: with `--plugins` alone \
     the proxies' listeners are their bootstraps', whose slots take Wasm and dynamic modules only";

/// Why a plugin or listener manifest in the artifacts folder is refused in folder mode.
const FOLDER_MODE_KINDS: &str = "in folder mode the artifacts folder declares clusters only; \
     plugins and listeners are declared with `--plugins` and `--mesh`";

/// Starts following the manifest folders of `mode` (in folder mode the artifacts folder, for
/// its `kind: Cluster` manifests). The first read is
/// the caller's, before any build is looked at ([`super::folder::read_all`]); later ones run
/// on their own task, so a slow reload never holds up ingest or shutdown. Only while
/// `leading` (always, for the only control plane) are the folders read: a follower places
/// what the leader saved, and reads its folders when it takes the lead. The watcher runs
/// while the returned value lives. `pending` is set on every change to a manifest until it is
/// read (the artifact watcher sets it too, for a manifest beside the builds).
pub(super) async fn start(
    mode: &Mode,
    ingest: &Ingest,
    pending: Arc<AtomicBool>,
    leading: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> Result<Option<(ManifestWatcher, Reloader)>, Error> {
    let dirs = match mode.governed() {
        true => manifest_dirs(mode)?,
        false => vec![
            ingest
                .folder
                .canonicalize()
                .map_err(Error::io("resolving", &ingest.folder))?,
        ],
    };
    let (watcher, changes) = ManifestWatcher::start(&dirs, Arc::clone(&pending))?;
    let reloader = Reloader {
        pending,
        ingest: ingest.clone(),
        dirs,
        governs: mode.governs(),
        leading,
    };
    tokio::spawn(reloader.clone().follow(changes, stop));
    Ok(Some((watcher, reloader)))
}

/// The manifest folders to watch (created if missing), plugins first.
fn manifest_dirs(mode: &Mode) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    for dir in mode.manifest_dirs() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating manifest folder", dir))?;
        dirs.push(dir.canonicalize().map_err(Error::io("resolving", dir))?);
    }
    Ok(dirs)
}

/// What a reload needs.
#[derive(Debug, Clone)]
pub(super) struct Reloader {
    /// A manifest changed since the last read began.
    pending: Arc<AtomicBool>,
    ingest: Ingest,
    dirs: Vec<PathBuf>,
    /// Which manifests count: in folder mode, clusters only.
    governs: Governs,
    /// Whether this replica leads (always true for the only control plane).
    leading: watch::Receiver<bool>,
}

impl Reloader {
    /// Reloads after each burst of changes until `stop`.
    async fn follow(self, mut changes: mpsc::Receiver<()>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                change = changes.recv() => if change.is_none() {
                    return;
                },
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            self.reload().await;
        }
    }

    /// Reads the manifest folders now if a manifest changed since the last read began, so that
    /// a build seen after a manifest (a cluster it calls, written just before it) goes out
    /// with that manifest in force, not ahead of it.
    pub(super) async fn catch_up(&self) {
        if self.pending.load(Ordering::Acquire) {
            self.reload().await;
        }
    }

    /// Reads the manifest folders again: what parses and fits goes in force, each refusal is
    /// logged with file, line and field, and the engine and ingest follow. Nothing while this
    /// replica follows.
    pub(super) async fn reload(&self) {
        if !*self.leading.borrow() {
            tracing::debug!("not leading: manifests not read");
            return;
        }
        self.pending.store(false, Ordering::Release);
        let manifests = Arc::clone(&self.ingest.manifests);
        let previous = Arc::clone(&manifests.read().unwrap_or_else(PoisonError::into_inner));
        let dirs = self.dirs.clone();
        let governs = self.governs;
        let read =
            tokio::task::spawn_blocking(move || read_catalog(&dirs, &previous, governs)).await;
        let catalog = match read {
            Ok(Some(catalog)) => catalog,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(error = %err, "reading manifests: task failed");
                return;
            }
        };
        let this = self.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let _serial = this
                .ingest
                .serial
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Ingest computes the releases; the engine takes them with the placement at once.
            this.ingest.apply_catalog(catalog)
        })
        .await;
        match applied {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "applying manifests"),
            Err(err) => tracing::error!(error = %err, "applying manifests: task failed"),
        }
    }
}

/// Scans and reconciles the folders against `previous` (in folder mode only clusters count);
/// logs what changed. `None` when the folders cannot be listed (the manifests in force stay).
fn read_catalog(dirs: &[PathBuf], previous: &Catalog, governs: Governs) -> Option<Arc<Catalog>> {
    let scanned = match manifest_watch::scan(dirs) {
        Ok(scanned) => scanned,
        Err(err) => {
            tracing::error!(error = %err, "reading manifests; the ones in force stay");
            return None;
        }
    };
    let mut catalog = reconcile(previous, &scanned);
    match governs {
        Governs::Clusters => {
            catalog = catalog.confine(&[ManifestKind::Cluster], FOLDER_MODE_KINDS);
        }
        Governs::Plugins => {
            let builtin =
                |m: &Manifest| matches!(m, Manifest::Plugin(p) if p.spec.envoy_filter.is_some());
            let why = |_: &Manifest| BUILTIN_NEEDS_MESH.to_string();
            catalog = catalog.refuse_where(builtin, ("spec.envoyFilter", "envoyFilter:"), &why);
        }
        Governs::Mesh => {}
    }
    let catalog = Arc::new(catalog);
    for status in catalog.files.values() {
        let already_told =
            previous.files.get(&status.file).map(|s| &s.error) == Some(&status.error);
        if let Some(error) = status.error.as_ref().filter(|_| !already_told) {
            let kept = status.in_force.is_some();
            tracing::warn!(file = %error.file, line = ?error.line, field = %error.field,
                reason = %error.message, previous_kept = kept, error = %error, "manifest refused");
        }
    }
    if *catalog != *previous {
        tracing::info!(
            plugins = catalog.plugins.len(),
            listeners = catalog.listeners.len(),
            clusters = catalog.clusters.len(),
            "manifests in force"
        );
    }
    Some(catalog)
}
