//! Decides when a file in the watched folder is complete. Pure: the watcher feeds it changes and
//! the time, and asks which paths are due.
//!
//! - A file renamed into the folder is complete the moment it appears: it is due at once, with
//!   no delay (write-then-rename is how builds and `mv` publish).
//! - A file written in place is due once its writer closed it and it stayed quiet for
//!   `after_close`.
//! - A file written with no close seen (a writer holding it open) is due only after
//!   `without_close` of quiet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A change the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsChange {
    /// Moved into the folder, complete.
    RenamedIn,
    /// Created or written in place.
    Written,
    /// Closed by a writer.
    ClosedAfterWrite,
    /// Removed or moved away.
    Removed,
}

/// Quiet periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    /// After the writer closed the file.
    pub after_close: Duration,
    /// After the last write, when no close was seen.
    pub without_close: Duration,
}

impl Default for Quiet {
    fn default() -> Self {
        Self {
            after_close: Duration::from_millis(100),
            without_close: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    last_change: Instant,
    closed: bool,
}

/// Paths written in place that are not yet due.
#[derive(Debug, Default)]
pub struct Debouncer {
    quiet: Quiet,
    pending: HashMap<PathBuf, Pending>,
}

impl Debouncer {
    /// A debouncer with these quiet periods.
    pub fn new(quiet: Quiet) -> Self {
        Self {
            quiet,
            pending: HashMap::new(),
        }
    }

    /// Records a change. Returns the path when it is due at once.
    pub fn on_change(&mut self, path: &Path, change: FsChange, now: Instant) -> Option<PathBuf> {
        match change {
            FsChange::RenamedIn => {
                self.pending.remove(path);
                Some(path.to_path_buf())
            }
            // A removal is looked at after the short quiet too: a file put back at once (an
            // editor's save) is a change, one still gone is a deletion.
            FsChange::Removed => {
                self.pending.insert(
                    path.to_path_buf(),
                    Pending {
                        last_change: now,
                        closed: true,
                    },
                );
                None
            }
            FsChange::Written | FsChange::ClosedAfterWrite => {
                let pending = self.pending.entry(path.to_path_buf()).or_insert(Pending {
                    last_change: now,
                    closed: false,
                });
                pending.last_change = now;
                pending.closed = change == FsChange::ClosedAfterWrite;
                None
            }
        }
    }

    /// Removes and returns the paths that are due at `now`, sorted.
    pub fn take_due(&mut self, now: Instant) -> Vec<PathBuf> {
        let quiet = self.quiet;
        let mut due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, pending)| now >= deadline(quiet, pending))
            .map(|(path, _)| path.clone())
            .collect();
        for path in &due {
            self.pending.remove(path);
        }
        due.sort();
        due
    }

    /// When the next pending path falls due, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|pending| deadline(self.quiet, pending))
            .min()
    }
}

fn deadline(quiet: Quiet, pending: &Pending) -> Instant {
    let wait = if pending.closed {
        quiet.after_close
    } else {
        quiet.without_close
    };
    pending.last_change + wait
}

#[cfg(test)]
mod tests;
