//! The one order effects are applied in: persist, log, alert, re-serve. A store that refuses
//! to save holds everything after it back; nothing is lost, and it all happens once saving
//! works again.

use std::sync::atomic::{AtomicBool, Ordering};

use super::tests::{FLEET, PLUGIN, node, policy, release};
use super::*;
use crate::rollout::state::StateFiles;

/// [`StateFiles`] whose plugin saves fail while `failing` is set.
#[derive(Debug)]
struct Flaky {
    files: StateFiles,
    failing: Arc<AtomicBool>,
}

impl RolloutStore for Flaky {
    fn load_plugins(&self) -> Result<BTreeMap<String, PluginRecord>, Error> {
        self.files.load_plugins()
    }
    fn save_plugins(&self, plugins: &BTreeMap<String, PluginRecord>) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            let err = std::io::Error::other("disk full");
            return Err(Error::io("writing", "state.json")(err));
        }
        self.files.save_plugins(plugins)
    }
    fn load_nodes(&self) -> Result<BTreeMap<String, meshplug_core::nodes::Node>, Error> {
        self.files.load_nodes()
    }
    fn save_nodes(
        &self,
        nodes: &BTreeMap<String, meshplug_core::nodes::Node>,
    ) -> Result<(), Error> {
        self.files.save_nodes(nodes)
    }
    fn append(&mut self, decision: &Decision) -> Result<(), Error> {
        self.files.append(decision)
    }
    fn last_seq(&self) -> u64 {
        self.files.last_seq()
    }
    fn recent(&self) -> Box<dyn DoubleEndedIterator<Item = &Decision> + '_> {
        self.files.recent()
    }
    fn mark_alive(&self, now_ms: u64) -> Result<(), Error> {
        self.files.mark_alive(now_ms)
    }
    fn last_alive_ms(&self) -> Option<u64> {
        self.files.last_alive_ms()
    }
}

#[test]
fn nothing_is_logged_or_served_before_the_state_is_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = Arc::new(AtomicBool::new(true));
    let store = Flaky {
        files: StateFiles::open(dir.path()).expect("state files"),
        failing: Arc::clone(&failing),
    };
    let cache = Arc::new(SnapshotCache::new());
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut engine =
        Engine::open(policy(), store, Arc::clone(&cache), metrics, None).expect("engine");
    for id in FLEET {
        engine.on_connect(&node(id), 0);
    }
    let served = |node: &str| {
        cache
            .snapshot(node)
            .resources(type_url::EXTENSION_CONFIG)
            .and_then(|r| r.version(PLUGIN))
            .map(String::from)
    };
    let err = engine
        .release(PLUGIN, release("a"), 10)
        .expect_err("the save fails");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(served("n1"), None, "served before its state was saved");
    assert!(
        engine.decisions().expect("log").is_empty(),
        "logged before saved"
    );
    engine.tick(100);
    assert_eq!(served("n1"), None, "still failing: still held back");
    failing.store(false, Ordering::SeqCst);
    engine.tick(200);
    for id in FLEET {
        assert_eq!(served(id), Some(release("a").version), "{id} once saved");
    }
    let log = engine.decisions().expect("log");
    let starts = log.iter().filter(|d| d.action == "start").count();
    assert_eq!(starts, 1, "logged once, after the save: {log:?}");
    let reopened = StateFiles::open(dir.path()).expect("reopen");
    let saved = reopened.load_plugins().expect("saved");
    assert!(saved[PLUGIN].rollout.is_some(), "the rollout is on disk");
}
