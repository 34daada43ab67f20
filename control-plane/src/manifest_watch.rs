//! Watches the `plugins/` and `mesh/` folders and reads them again, whole, once they have
//! been quiet for a moment. Manifests are small; reading all of them again is simpler and
//! safer than following single events (renames, editors' temporary files, deletions).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::Error;
use crate::catalog::ScannedFile;
use crate::ingest::read::{ReadOutcome, read_checked};
use crate::manifest::shape::UNREADABLE;

/// How long the folders must be quiet before they are read again.
pub const QUIET: Duration = Duration::from_millis(150);

/// A running watch of the manifest folders. Dropping it stops the watch.
#[derive(Debug)]
pub struct ManifestWatcher {
    _watcher: RecommendedWatcher,
}

impl ManifestWatcher {
    /// Starts watching `dirs`; a unit arrives on the receiver after each burst of changes, and
    /// `pending` is set at once on each change (a build seen meanwhile waits for the read).
    pub fn start(
        dirs: &[PathBuf],
        pending: Arc<AtomicBool>,
    ) -> Result<(Self, mpsc::Receiver<()>), Error> {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let (quiet_tx, quiet_rx) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |result: notify::Result<Event>| match result {
                Ok(event) if changes_a_manifest(&event) => {
                    pending.store(true, Ordering::Release);
                    let _ = raw_tx.send(());
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "manifest watch error"),
            })
            .map_err(|source| Error::Watch {
                path: dirs.first().cloned().unwrap_or_default(),
                source,
            })?;
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| Error::Watch {
                    path: dir.clone(),
                    source,
                })?;
        }
        tokio::spawn(settle(raw_rx, quiet_tx));
        Ok((Self { _watcher: watcher }, quiet_rx))
    }
}

async fn settle(mut raw: mpsc::UnboundedReceiver<()>, quiet: mpsc::Sender<()>) {
    while raw.recv().await.is_some() {
        loop {
            match tokio::time::timeout(QUIET, raw.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // A full channel already holds a pending read, which will see these changes too.
        let _ = quiet.try_send(());
    }
}

/// Whether `event` can change a manifest (the artifact watcher asks too, for the manifests
/// beside the builds).
pub fn changes_a_manifest(event: &Event) -> bool {
    is_change(&event.kind) && event.paths.iter().any(|p| is_manifest(p))
}

/// Whether an event can change what a folder holds. Opening and reading a file (the scan's
/// own reads among them) changes nothing: reacting to it would read the folders again and
/// again with nothing changed. A file closed after writing does.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// A `.yaml` or `.yml` file that is not hidden and not an editor's temporary file.
pub fn is_manifest(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Reads every manifest in `dirs`. Each is named `<folder name>/<file name>` in errors. A file
/// that cannot be read as UTF-8 text is given as unreadable text, so it is refused by name.
pub fn scan(dirs: &[PathBuf]) -> Result<Vec<ScannedFile>, Error> {
    let mut files = Vec::new();
    for dir in dirs {
        let label = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manifests")
            .to_string();
        let entries = std::fs::read_dir(dir).map_err(Error::io("listing", dir))?;
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if !is_manifest(&path) || path.is_dir() {
                continue;
            }
            let limit = crate::manifest::shape::MAX_BYTES as u64;
            let text = match read_checked(&path, dir, limit)? {
                ReadOutcome::Bytes(bytes) => String::from_utf8(bytes)
                    .unwrap_or_else(|_| format!("{UNREADABLE}the file is not UTF-8 text")),
                ReadOutcome::NotSettled => continue,
                ReadOutcome::Refused(reason) => format!("{UNREADABLE}{reason}"),
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            files.push(ScannedFile {
                file: format!("{label}/{name}"),
                text,
            });
        }
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(files)
}

#[cfg(test)]
mod tests;
