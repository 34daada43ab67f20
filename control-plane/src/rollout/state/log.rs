//! The decision log: every decision appended (fsynced) to `decisions.jsonl`, rotated to
//! `decisions.1.jsonl` … `decisions.<keep>.jsonl` once it passes a size, and the most recent
//! ones kept in memory for the admin API. Memory and disk are both bounded, however long a
//! rollout stays paused and keeps looking.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::Decision;
use crate::Error;

/// How the decision log is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Decisions kept in memory (the admin API serves these).
    pub in_memory: usize,
    /// Size at which `decisions.jsonl` is rotated.
    pub rotate_bytes: u64,
    /// Rotated files kept besides the current one.
    pub keep_files: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            in_memory: 10_000,
            rotate_bytes: 16 * 1024 * 1024,
            keep_files: 4,
        }
    }
}

/// The open decision log.
#[derive(Debug)]
pub struct DecisionLog {
    dir: PathBuf,
    file: File,
    written: u64,
    recent: VecDeque<Decision>,
    last_seq: u64,
    limits: LogLimits,
}

impl DecisionLog {
    /// Opens (creating) `<dir>/decisions.jsonl` and reads its most recent entries.
    pub fn open(dir: &Path, limits: LogLimits) -> Result<Self, Error> {
        let path = current(dir);
        let mut recent = VecDeque::new();
        let mut last_seq = 0;
        // The current file first; when it holds fewer than fit in memory, the newest rotated
        // file fills in (older first).
        for file in [rotated(dir, 1), path.clone()] {
            read_lines(&file, |decision| {
                last_seq = last_seq.max(decision.seq);
                push_bounded(&mut recent, decision, limits.in_memory);
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        let written = file.metadata().map_or(0, |m| m.len());
        if written > 0 && !ends_with_newline(&path) {
            // A crash tore the last line: end it, so the next entry starts a line of its own.
            (&file)
                .write_all(b"\n")
                .map_err(Error::io("appending to", &path))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            written,
            recent,
            last_seq,
            limits,
        })
    }

    /// The highest sequence number logged so far (0 for none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends one decision and fsyncs it, rotating first when the file is full.
    pub fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        let mut line = serde_json::to_vec(decision)?;
        line.push(b'\n');
        if self.written > 0 && self.written + line.len() as u64 > self.limits.rotate_bytes {
            self.rotate()?;
        }
        let path = current(&self.dir);
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(Error::io("appending to", &path))?;
        self.written += line.len() as u64;
        self.last_seq = self.last_seq.max(decision.seq);
        push_bounded(&mut self.recent, decision.clone(), self.limits.in_memory);
        Ok(())
    }

    /// The decisions kept in memory, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &Decision> {
        self.recent.iter()
    }

    /// The folder of its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let dir = &self.dir;
        let _ = fs::remove_file(rotated(dir, self.limits.keep_files.max(1)));
        for n in (1..self.limits.keep_files.max(1)).rev() {
            let from = rotated(dir, n);
            if from.exists() {
                fs::rename(&from, rotated(dir, n + 1)).map_err(Error::io("rotating", &from))?;
            }
        }
        let path = current(dir);
        fs::rename(&path, rotated(dir, 1)).map_err(Error::io("rotating", &path))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        self.written = 0;
        tracing::info!(file = %path.display(), "decision log rotated");
        Ok(())
    }
}

/// Up to `limit` decisions about `plugin` in the log files in `dir` with a sequence number
/// after `since` and before `before` (where the ones in memory start), oldest first: the
/// rotated files, oldest first, then the current one, each read a line at a time and no
/// further than the page needs. Each sequence number is taken once.
pub fn read_archived(
    dir: &Path,
    plugin: &str,
    (since, before): (u64, u64),
    limit: usize,
) -> Result<Vec<Decision>, Error> {
    let rotated_files = (1..=MAX_ROTATED)
        .take_while(|n| rotated(dir, *n).exists())
        .count();
    let mut page: Vec<Decision> = Vec::new();
    let files = (1..=rotated_files).rev().map(|n| rotated(dir, n));
    for file in files.chain([current(dir)]) {
        read_until(&file, |decision| {
            let newer = page.last().map_or(since, |last| last.seq);
            if decision.plugin == plugin && decision.seq > newer && decision.seq < before {
                page.push(decision);
            }
            page.len() < limit
        })?;
        if page.len() >= limit {
            break;
        }
    }
    Ok(page)
}

/// The most rotated files looked for (`keep_files` is far below it).
const MAX_ROTATED: usize = 1_000;

fn current(dir: &Path) -> PathBuf {
    dir.join("decisions.jsonl")
}

fn rotated(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("decisions.{n}.jsonl"))
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)
        })
        .is_ok_and(|()| last[0] == b'\n')
}

fn push_bounded(recent: &mut VecDeque<Decision>, decision: Decision, cap: usize) {
    if recent.len() >= cap.max(1) {
        recent.pop_front();
    }
    recent.push_back(decision);
}

/// Hands each decision in `path` to `each`, oldest first, one line in memory at a time; a
/// torn or garbled line (a crash mid-write) is skipped. A missing file has none.
fn read_lines(path: &Path, mut each: impl FnMut(Decision)) -> Result<(), Error> {
    read_until(path, |decision| {
        each(decision);
        true
    })
}

/// As [`read_lines`], until `each` returns false.
fn read_until(path: &Path, mut each: impl FnMut(Decision) -> bool) -> Result<(), Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Error::io("opening", path)(err)),
    };
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(Error::io("reading", path))?;
        if let Ok(decision) = serde_json::from_slice(&line)
            && !each(decision)
        {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
