//! Folder mode: a file deleted from the artifacts folder. A deleted build takes its filter out
//! of every proxy (unless the filter's other kind of build is there, which takes over); a
//! deleted configuration resets the filter's to `{}` (unless the other configuration file is
//! there, which takes over). Fixtures and schemas deleted are not followed: the next build or
//! configuration is checked without them once the folder is read again at start.

use std::path::Path;

use super::{Ingest, IngestOutcome, unix_ms};
use crate::Error;
use crate::artifact::{ArtifactKind, WatchedFile};
use crate::store::sha256_hex;

impl Ingest {
    /// `path` (a file of `watched`'s kind) is gone from the folder.
    pub(super) fn removed(
        &self,
        path: &Path,
        watched: WatchedFile,
    ) -> Result<IngestOutcome, Error> {
        match watched {
            WatchedFile::Artifact { name, kind } => {
                let other = match kind {
                    ArtifactKind::Wasm => format!("lib{name}.so"),
                    ArtifactKind::Native | ArtifactKind::Builtin => format!("{name}.wasm"),
                };
                let other = self.folder.join(other);
                if other.is_file() {
                    tracing::info!(plugin = %name, path = %path.display(), "build deleted: its other build takes over");
                    return self.handle_file(&other);
                }
                self.remove_plugin(&name, path)
            }
            WatchedFile::Config { name, shape } => {
                let other = self.folder.join(shape.other().file_name(&name));
                if other.is_file() {
                    return self.handle_file(&other);
                }
                tracing::info!(plugin = %name, path = %path.display(), "configuration deleted: the filter gets {{}}");
                let empty = b"{}";
                self.config(path, (name, shape), sha256_hex(empty), empty)
            }
            _ => Ok(IngestOutcome::Ignored),
        }
    }

    fn remove_plugin(&self, name: &str, path: &Path) -> Result<IngestOutcome, Error> {
        let Some(status) = self.registry().get(name).cloned() else {
            return Ok(IngestOutcome::Ignored);
        };
        let file = path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let reason = format!("{file} was deleted from the artifacts folder");
        self.engine().remove_plugin(name, &reason, unix_ms())?;
        self.registry().remove(name);
        let sha256 = status.artifact.map(|a| a.sha256).unwrap_or_default();
        tracing::info!(plugin = %name, %sha256, %reason, "plugin removed: every proxy stops running it");
        Ok(IngestOutcome::Removed {
            name: name.to_string(),
        })
    }
}
