//! Shared data for a `.so`: one store per loaded module, so every worker thread and stream of
//! this build sees it. A new build is a new file (Envoy loads each version from its own path),
//! so its store starts empty; proxy-wasm keeps a VM's shared data across reloads instead.

use std::sync::{Mutex, OnceLock};

use crate::Error;
use crate::shared::SharedStore;

fn store() -> &'static Mutex<SharedStore> {
    static STORE: OnceLock<Mutex<SharedStore>> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(SharedStore::default()))
}

/// The value under `key` and its version.
pub fn get(key: &str) -> Option<(Vec<u8>, u32)> {
    let store = store()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    store.get(key)
}

/// Stores `value` under `key`, with compare-and-swap when `cas` is given.
pub fn set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error> {
    let mut store = store()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    store.set(key, value, cas)
}
