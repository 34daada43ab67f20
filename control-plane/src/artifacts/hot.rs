//! The artifacts a fleet is fetching right now, kept in memory: a rollout makes every agent
//! fetch the same few shas at once, and serving them from one shared buffer saves reading the
//! file again for each fetch. Bounded in bytes; the least recently used go first.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// A bounded, most-recently-used list of (sha, bytes).
#[derive(Debug)]
pub struct HotArtifacts {
    max_bytes: usize,
    entries: Mutex<VecDeque<(String, Bytes)>>,
}

impl HotArtifacts {
    /// Keeps at most `max_bytes` in memory (0 keeps nothing).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether an artifact of `len` bytes is kept at all (at most a quarter of the budget).
    pub fn keeps(&self, len: usize) -> bool {
        len <= self.max_bytes / 4
    }

    /// The bytes of `sha`, if held; it becomes the most recently used.
    pub fn get(&self, sha: &str) -> Option<Bytes> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let at = entries.iter().position(|(s, _)| s == sha)?;
        let entry = entries.remove(at)?;
        let bytes = entry.1.clone();
        entries.push_front(entry);
        Some(bytes)
    }

    /// Holds `bytes` as `sha`, dropping the least recently used past the budget.
    pub fn put(&self, sha: &str, bytes: Bytes) {
        if !self.keeps(bytes.len()) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|(s, _)| s != sha);
        entries.push_front((sha.to_string(), bytes));
        let mut total: usize = entries.iter().map(|(_, b)| b.len()).sum();
        while total > self.max_bytes {
            match entries.pop_back() {
                Some((_, dropped)) => total -= dropped.len(),
                None => break,
            }
        }
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().map(|(_, b)| b.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_within_the_budget() {
        let hot = HotArtifacts::new(400);
        hot.put("a", Bytes::from(vec![1; 100]));
        hot.put("b", Bytes::from(vec![2; 100]));
        hot.put("c", Bytes::from(vec![3; 100]));
        assert!(hot.get("a").is_some(), "a is now the most recent");
        hot.put("d", Bytes::from(vec![4; 100]));
        hot.put("e", Bytes::from(vec![5; 100]));
        assert_eq!(hot.held_bytes(), 400);
        assert!(hot.get("b").is_none(), "the least recent went first");
        assert!(hot.get("a").is_some());
        hot.put("big", Bytes::from(vec![6; 101]));
        assert!(
            hot.get("big").is_none(),
            "over a quarter of the budget is never held"
        );
    }
}
