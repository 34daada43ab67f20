//! `state.json` as written since format 2: the plugins inside an envelope that carries a
//! generation, when it was saved and the sha256 of the plugins, so a truncated, garbled or
//! hand-emptied file is told apart from a real one. Each save keeps the generation before it
//! as `state.json.prev`.
//!
//! Loading never resets silently: a missing, empty or corrupt `state.json` while the store
//! holds artifacts is an error that names the file and the way out (`meshplug state check`,
//! `meshplug state restore --previous`, or `meshplug state reset` to start over on purpose).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PluginRecord;
use crate::Error;
use crate::store::{replace_synced, sha256_hex, write_synced};

/// The envelope's format number.
pub const FORMAT: u32 = 2;

/// `state.json` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`FORMAT`].
    pub format: u32,
    /// Counts saves: each one is the previous plus one.
    pub generation: u64,
    /// When it was saved, ms since the Unix epoch.
    pub saved_ms: u64,
    /// sha256 of the compact JSON of `plugins`.
    pub checksum: String,
    /// The rollout state of every filter.
    pub plugins: BTreeMap<String, PluginRecord>,
}

/// An [`Envelope`] as it is written: the same fields, borrowing the plugins (a save happens
/// before every push; copying every filter's state for it would be waste).
#[derive(Serialize)]
struct Written<'a> {
    format: u32,
    generation: u64,
    saved_ms: u64,
    checksum: String,
    plugins: &'a BTreeMap<String, PluginRecord>,
}

/// The bytes of `state.json` holding `plugins` as generation `generation`.
fn encode(
    generation: u64,
    saved_ms: u64,
    plugins: &BTreeMap<String, PluginRecord>,
) -> Result<Vec<u8>, Error> {
    let written = Written {
        format: FORMAT,
        generation,
        saved_ms,
        checksum: checksum(plugins)?,
        plugins,
    };
    Ok(serde_json::to_vec_pretty(&written)?)
}

fn checksum(plugins: &BTreeMap<String, PluginRecord>) -> Result<String, Error> {
    Ok(sha256_hex(&serde_json::to_vec(plugins)?))
}

/// What a state file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// No such file.
    Missing,
    /// A valid envelope.
    Valid(Envelope),
    /// A format-1 file (the bare map of plugins), read as generation 0.
    Legacy(BTreeMap<String, PluginRecord>),
    /// Unreadable as state, and why.
    Corrupt(String),
}

/// Reads and verifies the state file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(err) => return Err(Error::io("reading", path)(err)),
    };
    Ok(verify(&bytes))
}

/// Verifies the bytes of a state file.
pub fn verify(bytes: &[u8]) -> Loaded {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Loaded::Corrupt("the file is empty".into());
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => return Loaded::Corrupt(format!("not JSON ({err}): truncated or garbled")),
    };
    if value.get("format").is_none() {
        return match serde_json::from_value(value) {
            Ok(plugins) => Loaded::Legacy(plugins),
            Err(err) => Loaded::Corrupt(format!("not rollout state: {err}")),
        };
    }
    let envelope: Envelope = match serde_json::from_value(value) {
        Ok(envelope) => envelope,
        Err(err) => return Loaded::Corrupt(format!("not rollout state: {err}")),
    };
    if envelope.format != FORMAT {
        return Loaded::Corrupt(format!(
            "format {} is not the {FORMAT} this meshplug reads",
            envelope.format
        ));
    }
    match checksum(&envelope.plugins) {
        Ok(sum) if sum == envelope.checksum => Loaded::Valid(envelope),
        Ok(sum) => Loaded::Corrupt(format!(
            "checksum mismatch: the file says {}, its plugins hash to {sum}; it was edited \
             or damaged",
            envelope.checksum
        )),
        Err(err) => Loaded::Corrupt(err.to_string()),
    }
}

/// The state to start from, or why starting would lose data. `store_has_artifacts`: the
/// artifact store is not empty, so rollout state existed once.
pub fn resolve(
    path: &Path,
    loaded: Loaded,
    store_has_artifacts: bool,
) -> Result<(u64, BTreeMap<String, PluginRecord>), Error> {
    let refuse = |detail: String| Error::State {
        path: path.to_path_buf(),
        detail,
    };
    match loaded {
        Loaded::Valid(envelope) => Ok((envelope.generation, envelope.plugins)),
        Loaded::Legacy(plugins) if plugins.is_empty() && store_has_artifacts => Err(refuse(
            "it holds no filter while the store holds artifacts".into(),
        )),
        Loaded::Legacy(plugins) => Ok((0, plugins)),
        Loaded::Missing if store_has_artifacts => Err(refuse(
            "it is missing while the store holds artifacts".into(),
        )),
        Loaded::Missing => Ok((0, BTreeMap::new())),
        Loaded::Corrupt(detail) => Err(refuse(detail)),
    }
}

/// The previous generation's file next to `path`.
pub fn previous(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".prev");
    PathBuf::from(name)
}

/// Writes `plugins` as generation `generation` to `path` durably, keeping what was there as
/// [`previous`]. `path` exists at every moment (the previous file is kept by a hard link,
/// then the new one renamed over).
pub fn save(
    path: &Path,
    generation: u64,
    saved_ms: u64,
    plugins: &BTreeMap<String, PluginRecord>,
) -> Result<(), Error> {
    let bytes = encode(generation, saved_ms, plugins)?;
    let tmp = path.with_extension("json.tmp");
    write_synced(&tmp, &bytes)?;
    if path.exists() {
        let prev = previous(path);
        let prev_tmp = path.with_extension("json.prev.tmp");
        let _ = fs::remove_file(&prev_tmp);
        fs::hard_link(path, &prev_tmp).map_err(Error::io("linking", &prev_tmp))?;
        fs::rename(&prev_tmp, &prev).map_err(Error::io("renaming", &prev))?;
    }
    fs::rename(&tmp, path).map_err(Error::io("renaming", path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("syncing", dir))?;
    }
    Ok(())
}

/// One line about what a state file holds, for `meshplug state check`.
pub fn describe(loaded: &Loaded) -> String {
    match loaded {
        Loaded::Missing => "missing".into(),
        Loaded::Valid(e) => format!(
            "valid: generation {}, saved at {} ms since the epoch, {} filter(s), checksum ok",
            e.generation,
            e.saved_ms,
            e.plugins.len()
        ),
        Loaded::Legacy(plugins) => format!(
            "format 1 (no checksum): {} filter(s); the next save upgrades it",
            plugins.len()
        ),
        Loaded::Corrupt(why) => format!("damaged: {why}"),
    }
}

/// Whether a state file can be started from.
pub fn usable(loaded: &Loaded) -> bool {
    matches!(loaded, Loaded::Valid(_) | Loaded::Legacy(_))
}

/// Puts the previous generation back as `path`; what was at `path` is kept as
/// `<path>.damaged-<now_ms>`. Refused when the previous generation is not usable itself.
pub fn restore_previous(path: &Path, now_ms: u64) -> Result<String, Error> {
    let prev = previous(path);
    let loaded = load(&prev)?;
    if !usable(&loaded) {
        return Err(Error::rollout(format!(
            "{}: {}; nothing to restore",
            prev.display(),
            describe(&loaded)
        )));
    }
    let bytes = fs::read(&prev).map_err(Error::io("reading", &prev))?;
    let kept = replace_keeping_aside(path, &bytes, now_ms)?;
    Ok(format!(
        "restored {} from {}{}",
        path.display(),
        describe(&loaded),
        kept.map_or_else(String::new, |k| format!(
            "; the file it replaced is {}",
            k.display()
        ))
    ))
}

/// Starts the rollout state over on purpose: an empty, valid generation. What was at `path`
/// is kept as `<path>.damaged-<now_ms>`.
pub fn reset(path: &Path, now_ms: u64) -> Result<String, Error> {
    let bytes = encode(1, now_ms, &BTreeMap::new())?;
    let kept = replace_keeping_aside(path, &bytes, now_ms)?;
    Ok(format!(
        "{} starts over empty: every filter's last good version and quarantine are forgotten{}",
        path.display(),
        kept.map_or_else(String::new, |k| format!(
            "; the old file is {}",
            k.display()
        ))
    ))
}

/// Moves what is at `path` aside (see [`set_aside`]) and writes `bytes` there durably; where
/// the old file went.
fn replace_keeping_aside(path: &Path, bytes: &[u8], now_ms: u64) -> Result<Option<PathBuf>, Error> {
    let kept = set_aside(path, now_ms)?;
    replace_synced(path, &path.with_extension("json.tmp"), bytes)?;
    Ok(kept)
}

fn set_aside(path: &Path, now_ms: u64) -> Result<Option<PathBuf>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".damaged-{now_ms}"));
    let aside = PathBuf::from(name);
    fs::rename(path, &aside).map_err(Error::io("renaming", path))?;
    Ok(Some(aside))
}

#[cfg(test)]
mod tests;
