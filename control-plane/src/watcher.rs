//! Watches the artifacts folder with `notify` and yields paths once they are complete, as the
//! [`crate::debounce`] rules decide.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::Error;
use crate::artifact::{classify, ignored_reason};
use crate::debounce::{Debouncer, FsChange, Quiet};

/// A running watch. Dropping it stops the watch.
#[derive(Debug)]
pub struct ArtifactWatcher {
    _watcher: RecommendedWatcher,
    changes: mpsc::UnboundedSender<(PathBuf, FsChange)>,
}

impl ArtifactWatcher {
    /// Starts watching `dir`; complete paths arrive on the returned receiver. A change to a
    /// manifest here sets `manifests_changed` before any later build arrives (one queue of
    /// events), so the build can wait for the manifest to be read.
    pub fn start(
        dir: &Path,
        quiet: Quiet,
        manifests_changed: Arc<AtomicBool>,
    ) -> Result<(Self, mpsc::Receiver<PathBuf>), Error> {
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = mpsc::channel(64);
        let sender = changes_tx.clone();
        let mut ignored = IgnoredNames::default();
        let mut watcher =
            notify::recommended_watcher(move |result: notify::Result<Event>| match result {
                Ok(event) => {
                    if crate::manifest_watch::changes_a_manifest(&event) {
                        manifests_changed.store(true, Ordering::Release);
                    }
                    if matches!(
                        event.kind,
                        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
                    ) {
                        for path in event.paths.iter().filter(|p| classify(p).is_none()) {
                            ignored.note(path);
                        }
                    }
                    for change in changes_of(&event) {
                        let _ = sender.send(change);
                    }
                }
                Err(err) => tracing::warn!(error = %err, "file watch error"),
            })
            .map_err(|source| Error::Watch {
                path: dir.to_path_buf(),
                source,
            })?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| Error::Watch {
                path: dir.to_path_buf(),
                source,
            })?;
        tokio::spawn(settle(changes_rx, ready_tx, Debouncer::new(quiet)));
        let watcher = Self {
            _watcher: watcher,
            changes: changes_tx,
        };
        Ok((watcher, ready_rx))
    }

    /// Asks for `path` to be looked at again once it is quiet (it was still changing).
    pub fn recheck(&self, path: &Path) {
        let _ = self
            .changes
            .send((path.to_path_buf(), FsChange::ClosedAfterWrite));
    }
}

/// Logs each file name the watcher does not act on, once, with the reason. Bounded: after
/// [`IgnoredNames::CAPACITY`] names it starts over, so a flood of names cannot grow it.
#[derive(Debug, Default)]
pub struct IgnoredNames {
    told: std::collections::HashSet<std::ffi::OsString>,
}

impl IgnoredNames {
    /// How many names are remembered.
    pub const CAPACITY: usize = 4096;

    /// Logs `path` unless its name was logged before. Returns whether it logged.
    pub fn note(&mut self, path: &Path) -> bool {
        let Some(name) = path.file_name() else {
            return false;
        };
        if self.told.contains(name) {
            return false;
        }
        if self.told.len() >= Self::CAPACITY {
            self.told.clear();
        }
        self.told.insert(name.to_os_string());
        let reason = ignored_reason(path);
        if reason.starts_with("a hidden") || reason.starts_with("a manifest") {
            tracing::info!(path = %path.display(), %reason, "ignored");
        } else {
            tracing::warn!(path = %path.display(), %reason, "ignored");
        }
        true
    }
}

/// Maps a notify event to the changes the debouncer understands, for files we act on only.
fn changes_of(event: &Event) -> Vec<(PathBuf, FsChange)> {
    let relevant = |path: &PathBuf| classify(path).is_some();
    let each = |change: FsChange| -> Vec<(PathBuf, FsChange)> {
        event
            .paths
            .iter()
            .filter(|p| relevant(p))
            .map(|p| (p.clone(), change))
            .collect()
    };
    match event.kind {
        // inotify reports a rename as `From`, `To`, and then `Both`; the first two already
        // said everything, and acting on `Both` too would read the file twice.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => Vec::new(),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => each(FsChange::RenamedIn),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => each(FsChange::Removed),
        EventKind::Modify(ModifyKind::Name(_)) => event
            .paths
            .iter()
            .filter(|p| relevant(p))
            .map(|p| {
                let change = if p.exists() {
                    FsChange::RenamedIn
                } else {
                    FsChange::Removed
                };
                (p.clone(), change)
            })
            .collect(),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => each(FsChange::ClosedAfterWrite),
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
            each(FsChange::Written)
        }
        EventKind::Remove(_) => each(FsChange::Removed),
        _ => Vec::new(),
    }
}

async fn settle(
    mut changes: mpsc::UnboundedReceiver<(PathBuf, FsChange)>,
    ready: mpsc::Sender<PathBuf>,
    mut debouncer: Debouncer,
) {
    loop {
        let deadline = debouncer.next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let due = tokio::select! {
            change = changes.recv() => match change {
                Some((path, change)) => {
                    tracing::debug!(path = %path.display(), ?change, "seen");
                    debouncer.on_change(&path, change, Instant::now()).into_iter().collect()
                }
                None => return,
            },
            () = sleep => debouncer.take_due(Instant::now()),
        };
        for path in due {
            tracing::info!(path = %path.display(), "seen complete");
            if ready.send(path).await.is_err() {
                return;
            }
        }
    }
}
