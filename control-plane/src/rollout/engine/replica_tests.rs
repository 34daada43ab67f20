//! The engine as a replica: a follower decides nothing, serves the leader's records and relays
//! its flushes; a leader decides on other replicas' nodes; a replica that steps down stops
//! deciding, and leads again from what its store holds.

use super::tests::{FLEET, Harness, PLUGIN, release, with_last_good};
use super::*;
use crate::Error;
use crate::rollout::Command;
use crate::rollout::state::StateFiles;
use meshplug_core::nodes::Nodes;

/// A follower of the leader whose fleet `leader` is.
fn follower_of(leader: &Harness, nodes: &[&str]) -> Harness {
    let mut h = Harness::new(&[]);
    let store = crate::store::Store::open(h.dir.path().join("store")).expect("store");
    h.engine.start_following(store);
    for id in nodes {
        h.engine.on_connect(&super::tests::node(id), 0);
    }
    h.engine.mirror(leader.engine.plugins().clone());
    h
}

#[test]
fn a_follower_decides_nothing_and_serves_the_leaders_records() {
    let leader = with_last_good();
    let mut follower = follower_of(&leader, &["f1"]);
    assert!(!follower.engine.decides());
    let refused = follower.engine.release(PLUGIN, release("b"), 100);
    assert!(matches!(refused, Err(Error::NotLeader(_))), "{refused:?}");
    let refused = follower.engine.command(PLUGIN, Command::Pause, 100);
    assert!(matches!(refused, Err(Error::NotLeader(_))), "{refused:?}");
    assert_eq!(follower.served("f1"), Some(release("a").version));
    // Its path is its own store's copy of the sha, not the leader's.
    let snapshot = follower.cache.snapshot("f1");
    let body = snapshot
        .resources(xds::type_url::EXTENSION_CONFIG)
        .and_then(|r| r.get(PLUGIN))
        .map(|any| String::from_utf8_lossy(&any.value).into_owned())
        .unwrap_or_default();
    let own = follower.dir.path().join("store").display().to_string();
    assert!(body.contains(&own), "served from {own}");
    // Nothing to decide on a tick, and the flushes wait for the leader.
    follower.flush("f1", 100, 100, 5_000);
    follower.engine.tick(5_000);
    let (relayed, dropped) = follower.engine.take_relayed();
    assert_eq!((relayed.len(), dropped), (1, 0));
    assert_eq!(relayed[0].node, "f1");
    assert!(follower.engine.take_relayed().0.is_empty(), "taken once");
}

#[test]
fn a_leader_decides_on_the_nodes_other_replicas_hold() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = super::tests::canary_of(&h);
    // The canary moved to another replica, which published that it NACKed b.
    let mut there = Nodes::new();
    there.connect(&translate::identity(&super::tests::node(&canary)), 1_100);
    there.apply(
        &canary,
        &NodeEvent::Nacked(
            vec![meshplug_core::nodes::FilterVersion {
                name: PLUGIN.into(),
                version: release("b").version,
            }],
            "Failed to load Wasm module".into(),
        ),
        1_200,
    );
    h.engine.on_event(
        &XdsEvent::StreamClosed {
            stream: 1,
            node: super::tests::node(&canary),
        },
        1_150,
    );
    h.engine
        .set_remote_nodes("r2", there.saved().clone(), 1_300);
    let record = h.record();
    assert!(record.rollout.is_none(), "rolled back on the remote NACK");
    assert!(record.quarantine.contains_key(&release("b").version));
}

#[test]
fn a_replica_that_steps_down_stops_deciding_and_leads_again_from_its_store() {
    let mut h = with_last_good();
    let dir = tempfile::tempdir().expect("tempdir");
    let follower_store = StateFiles::open(dir.path()).expect("files");
    h.engine.follow(Box::new(follower_store));
    assert!(!h.engine.decides());
    assert!(h.engine.release(PLUGIN, release("b"), 2_000).is_err());
    // It leads again from a store holding the last good a: it serves every proxy a.
    let leader_store = StateFiles::open(h.dir.path()).expect("files");
    h.engine.lead(Box::new(leader_store), 3_000).expect("lead");
    assert!(h.engine.decides());
    for id in FLEET {
        assert_eq!(h.served(id), Some(release("a").version), "{id}");
    }
    h.engine
        .release(PLUGIN, release("b"), 3_100)
        .expect("b once leading");
}
