//! Reading a file from the artifacts folder without trusting it: only regular files are read
//! (never a FIFO, a device, a socket or a folder), a symbolic link only when it resolves to a
//! regular file inside the folder, the size is taken from `fstat` on the open file and checked
//! before a byte is read, and nothing past the limit is ever read.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// What reading one path came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The whole file, unchanged while it was read.
    Bytes(Vec<u8>),
    /// Gone, or changed while it was read: it will be seen again.
    NotSettled,
    /// Not read, and why.
    Refused(String),
}

/// Reads `path`, a file in `folder` (canonical), if it is a regular file of at most
/// `max_bytes`.
pub fn read_checked(path: &Path, folder: &Path, max_bytes: u64) -> Result<ReadOutcome, Error> {
    let target = match resolve(path, folder)? {
        Ok(Some(target)) => target,
        Ok(None) => return Ok(ReadOutcome::NotSettled),
        Err(reason) => return Ok(ReadOutcome::Refused(reason)),
    };
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer. fstat then says what
    // was opened, so a file swapped for something else after the check is still caught.
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&target)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ReadOutcome::NotSettled);
        }
        Err(err) => return Err(Error::io("opening", &target)(err)),
    };
    let before = file.metadata().map_err(Error::io("fstat", &target))?;
    if let Some(kind) = not_regular(&before.file_type()) {
        return Ok(ReadOutcome::Refused(format!(
            "not a regular file: {kind}; only regular files are read"
        )));
    }
    if before.len() > max_bytes {
        return Ok(ReadOutcome::Refused(format!(
            "file is {} bytes, over the limit of {max_bytes} bytes; not read",
            before.len()
        )));
    }
    let bytes = read_at_most(&file, &target, before.len(), max_bytes)?;
    let after = file.metadata().map_err(Error::io("fstat", &target))?;
    let path_now = fs::metadata(&target).ok();
    let settled = bytes.len() as u64 == before.len()
        && after.len() == before.len()
        && after.modified().ok() == before.modified().ok()
        && path_now.is_some_and(|m| {
            m.len() == before.len() && m.modified().ok() == before.modified().ok()
        });
    Ok(if settled {
        ReadOutcome::Bytes(bytes)
    } else {
        ReadOutcome::NotSettled
    })
}

/// The file to open: `path` itself, or the target of a link that stays in `folder`.
/// `Ok(None)` when the path is gone; `Err(reason)` when it is refused.
fn resolve(path: &Path, folder: &Path) -> Result<Result<Option<PathBuf>, String>, Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(err) => return Err(Error::io("reading metadata of", path)(err)),
    };
    if !meta.file_type().is_symlink() {
        return Ok(Ok(Some(path.to_path_buf())));
    }
    let link = fs::read_link(path).map_err(Error::io("reading link", path))?;
    let target = match path.canonicalize() {
        Ok(target) => target,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(format!("dangling symbolic link to {}", link.display())));
        }
        Err(err) => return Err(Error::io("resolving link", path)(err)),
    };
    if !target.starts_with(folder) {
        return Ok(Err(format!(
            "symbolic link to {}, outside the artifacts folder {}; links are followed only \
             inside it",
            target.display(),
            folder.display()
        )));
    }
    Ok(Ok(Some(target)))
}

fn not_regular(kind: &fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_dir() {
        Some("a folder")
    } else {
        Some("not a file")
    }
}

/// Reads up to `max_bytes + 1` bytes, so a file that grew past the limit is seen as changed
/// without reading the rest.
fn read_at_most(file: &File, path: &Path, size: u64, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Error::io("reading", path))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
