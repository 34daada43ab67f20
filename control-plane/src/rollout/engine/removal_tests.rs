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
