//! The content-addressed artifact store: `<dir>/<sha256>.<ext>`, read-only, written by
//! write-fsync-rename so a reader never sees half a file, and each sha has its own path (Envoy
//! identifies a module by path).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::artifact::ArtifactKind;

pub use meshplug_core::digest::sha256_hex;

/// The store folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(Error::io("creating store", &dir))?;
        let dir = dir
            .canonicalize()
            .map_err(Error::io("resolving store", &dir))?;
        let store = Self { dir };
        store.remove_leftovers();
        Ok(store)
    }

    /// The temp file a put of `sha` writes before its rename.
    pub fn temp_path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!(".{sha}.{}.tmp", std::process::id()))
    }

    /// Whether the store holds any artifact (a `.wasm` or `.so`).
    pub fn has_artifacts(&self) -> bool {
        fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && (name.ends_with(".wasm") || name.ends_with(".so"))
            })
        })
    }

    /// Removes the temp files a crashed or failed put left.
    fn remove_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::info!(file = %entry.path().display(), "removing a temp file an interrupted store write left");
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where an artifact with this sha and kind lives.
    pub fn path_for(&self, sha: &str, kind: ArtifactKind) -> PathBuf {
        self.dir.join(format!("{sha}.{}", kind.extension()))
    }

    /// Stores `bytes` (whose sha256 is `sha`) and returns its path. A sha already stored is
    /// left as it is.
    pub fn put(&self, sha: &str, kind: ArtifactKind, bytes: &[u8]) -> Result<PathBuf, Error> {
        let path = self.path_for(sha, kind);
        if path.exists() {
            return Ok(path);
        }
        let tmp = self.temp_path(sha);
        let written = write_synced(&tmp, bytes)
            .and_then(|()| {
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))
                    .map_err(Error::io("making read-only", &tmp))
            })
            .and_then(|()| {
                fs::rename(&tmp, &path).map_err(Error::io("renaming into store", &path))
            });
        if let Err(err) = written {
            // A full disk (or any failed write) leaves nothing behind.
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
        fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(Error::io("syncing store folder", &self.dir))?;
        Ok(path)
    }

    /// Records why `sha` was refused, next to where it would have been stored, so it is never
    /// tried twice.
    pub fn put_rejection(&self, sha: &str, reason: &str) -> Result<(), Error> {
        let path = self.dir.join(format!("{sha}.rejected"));
        let tmp = self
            .dir
            .join(format!(".{sha}.rejected.{}.tmp", std::process::id()));
        replace_synced(&path, &tmp, reason.as_bytes())
    }

    /// Why `sha` was refused before, if it was.
    pub fn rejection(&self, sha: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("{sha}.rejected"))).ok()
    }
}

/// Writes `bytes` to `path` and fsyncs it; on failure (a full disk, say) nothing is left at
/// `path`.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let written = fs::File::create(path)
        .map_err(Error::io("creating", path))
        .and_then(|mut file| {
            file.write_all(bytes).map_err(Error::io("writing", path))?;
            file.sync_all().map_err(Error::io("syncing", path))
        });
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// Replaces `path` with `bytes` durably: written and fsynced as `tmp`, then renamed over
/// `path`, so a reader sees the old file or the new one, never half of one. On failure `tmp`
/// is removed.
pub(crate) fn replace_synced(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_synced(tmp, bytes)?;
    let renamed = fs::rename(tmp, path).map_err(Error::io("renaming", path));
    if renamed.is_err() {
        let _ = fs::remove_file(tmp);
    }
    renamed
}

#[cfg(test)]
mod tests;
