//! A plugin removed (its build deleted in folder mode): every proxy that ran it is handed the
//! pass-through (state-of-the-world ECDS cannot take a configuration back), a rollout in
//! progress ends, and its quarantine stays.

use super::tests::{FLEET, PLUGIN, canary_of, release, with_last_good};
use crate::rollout::state::Release;

#[test]
fn a_removed_plugin_leaves_every_proxy_and_keeps_its_quarantine() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 100).expect("b");
    let canary = canary_of(&h);
    h.nack(&canary, 150);
    h.engine.release(PLUGIN, release("c"), 200).expect("c");
    h.engine
        .remove_plugin(PLUGIN, "authz.wasm was deleted", 300)
        .expect("removed");
    for id in FLEET {
        assert_eq!(h.served(id), Some(Release::pass_through().version), "{id}");
    }
    let record = h.record();
    assert!(record.rollout.is_none() && record.last_good.is_none() && record.published.is_none());
    assert!(record.quarantine.contains_key(&release("b").version));
    let log = h.engine.decisions().expect("log");
    assert!(
        log.iter().any(|d| d.action == "cancel"),
        "the rollout of c ended"
    );
    let removed = log.iter().find(|d| d.action == "remove").expect("logged");
    assert_eq!(removed.from, Some(release("a").version));
    assert_eq!(removed.reason, "authz.wasm was deleted");
    let refused = h
        .engine
        .release(PLUGIN, release("b"), 400)
        .expect_err("quarantined");
    assert!(refused.to_string().contains("quarantined"), "{refused}");
    h.engine.release(PLUGIN, release("a"), 500).expect("back");
    for id in FLEET {
        assert_eq!(h.served(id), Some(release("a").version), "{id}");
    }
}

/// A data folder used in folder mode, then by `serve --plugins DIR` whose manifests do not
/// declare the filter: after the restart every proxy that ran it is handed the pass-through,
/// and the node model (so `meshplug status`) still lists the slot, with what it runs now.
#[test]
fn a_data_folder_moved_to_manifests_takes_an_undeclared_filter_off_and_lists_it() {
    use std::sync::Arc;

    use meshplug_core::rollout::placement::Governs;

    use crate::catalog::Catalog;
    use crate::rollout::Engine;
    use crate::rollout::metrics::RolloutMetrics;
    use crate::rollout::state::StateFiles;

    let mut h = with_last_good();
    h.engine.tick(5_000);
    let files = StateFiles::open(h.dir.path()).expect("state files");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let policy = super::tests::policy();
    let mut engine =
        Engine::open(policy, files, Arc::clone(&h.cache), metrics, None).expect("engine");
    engine.apply_manifests(
        Arc::new(Catalog::new()),
        Governs::Plugins,
        Vec::new(),
        6_000,
    );
    for id in FLEET {
        engine.on_connect(&super::tests::node(id), 6_100);
    }
    let pass_through = Release::pass_through().version;
    for id in FLEET {
        let snapshot = h.cache.snapshot(id);
        let served = snapshot
            .resources(xds::type_url::EXTENSION_CONFIG)
            .and_then(|r| r.version(PLUGIN))
            .map(String::from);
        assert_eq!(served, Some(pass_through.clone()), "{id}");
        let node = engine.nodes().get(id).expect("listed");
        assert_eq!(
            node.filters[PLUGIN].desired.as_deref(),
            Some(pass_through.as_str()),
            "{id}"
        );
    }
}
