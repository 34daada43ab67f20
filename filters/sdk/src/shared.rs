//! Key-value data with compare-and-swap versions, as proxy-wasm's shared data behaves. The
//! native backend keeps one per loaded `.so` (every worker and stream of that build); the mock
//! keeps one per harness.

use std::collections::HashMap;

use crate::Error;

/// The store.
#[derive(Debug, Default)]
pub struct SharedStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
}

impl SharedStore {
    /// The value under `key` and its version.
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    /// Stores `value`; with `cas`, only if the value is still at that version (a key never
    /// written is at version 0).
    pub fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error> {
        let current = self.entries.get(key).map_or(0, |(_, version)| *version);
        if cas.is_some_and(|cas| cas != current) {
            return Err(Error::CasMismatch { key: key.into() });
        }
        let version = current.wrapping_add(1).max(1);
        self.entries.insert(key.into(), (value.to_vec(), version));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SharedStore;
    use crate::Error;

    #[test]
    fn versions_guard_writes() {
        let mut store = SharedStore::default();
        assert_eq!(store.get("k"), None);
        store
            .set("k", b"1", Some(0))
            .expect("a new key is at version 0");
        let (value, version) = store.get("k").expect("stored");
        assert_eq!((value.as_slice(), version), (&b"1"[..], 1));
        let stale = store.set("k", b"2", Some(0));
        assert_eq!(stale, Err(Error::CasMismatch { key: "k".into() }));
        store.set("k", b"2", Some(1)).expect("current version");
        store.set("k", b"3", None).expect("no cas: always");
        assert_eq!(store.get("k"), Some((b"3".to_vec(), 3)));
    }
}
