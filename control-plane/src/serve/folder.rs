//! The artifacts folder: what is there at start, then each settled path, handed to ingest on a
//! blocking thread; and the ready file.

use std::path::{Path, PathBuf};

use super::reload::Reloader;
use crate::Error;
use crate::artifact::{WatchedFile, classify};
use crate::ingest::{Ingest, IngestOutcome};
use crate::watcher::ArtifactWatcher;

/// What this control plane reads whole when it starts leading (at once, for the only
/// control plane): its registry learns what is published (a replica taking the lead ingested
/// nothing while it followed), its manifest folders are read (the catalog in force before is
/// the one it followed, if any), then every file in the artifacts folder is ingested (a build
/// already published is unchanged).
pub(super) async fn read_all(
    ingest: &Ingest,
    reloader: Option<&Reloader>,
    watcher: &ArtifactWatcher,
) -> Result<(), Error> {
    ingest.resume_published();
    if let Some(reloader) = reloader {
        reloader.reload().await;
    }
    for path in existing_files(&ingest.folder)? {
        handle_path(ingest, watcher, path).await;
    }
    Ok(())
}

/// Ingests one settled path; one still changing is looked at again.
pub(super) async fn handle_path(ingest: &Ingest, watcher: &ArtifactWatcher, path: PathBuf) {
    let worker = ingest.clone();
    let job_path = path.clone();
    let result = tokio::task::spawn_blocking(move || worker.handle(&job_path)).await;
    match result {
        Ok(Ok(IngestOutcome::NotSettled)) => {
            tracing::debug!(path = %path.display(), "still changing; will look again");
            if path.exists() {
                watcher.recheck(&path);
            }
        }
        Ok(Ok(IngestOutcome::Unchanged { name, sha256 })) => {
            tracing::info!(plugin = %name, %sha256, "unchanged; nothing to push");
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::error!(path = %path.display(), error = %err, "ingest failed"),
        Err(err) => tracing::error!(path = %path.display(), error = %err, "ingest task failed"),
    }
}

/// The files already in the folder at startup: configurations first, so each artifact is
/// published with its configuration.
pub(super) fn existing_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(Error::io("listing", dir))?;
    let mut ignored = crate::watcher::IgnoredNames::default();
    let mut files: Vec<(bool, PathBuf)> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let Some(watched) = classify(&path) else {
                ignored.note(&path);
                return None;
            };
            let is_artifact = matches!(watched, WatchedFile::Artifact { .. });
            Some((is_artifact, path))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Writes the bound addresses (`BoundAddrs`, or the agent's) to `path` atomically.
pub(crate) fn write_ready_file(path: &Path, bound: &impl serde::Serialize) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(bound)?).map_err(Error::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("renaming", path))
}
