//! Health after the push of a first version: watched for the bake against the same proxies'
//! traffic before it; on a fail its failure policy decides (failOpen takes it off, failClosed
//! and reload keep it, pause for a person and alert); the node model says which proxies fail.

use meshplug_core::manifest::FailurePolicy;
use meshplug_core::rollout::decide::Stage;

use super::tests::{Harness, PLUGIN, policy, release};
use super::*;
use crate::rollout::state::StateFiles;

const FLEET: [&str; 2] = ["n1", "n2"];

/// Two proxies with 2 s of clean traffic, alerts collected.
fn fleet() -> (Harness, mpsc::UnboundedReceiver<Decision>) {
    let (mut h, rx) = fleet_without_history();
    for t in (100..=2_000).step_by(100) {
        for id in FLEET {
            h.flush(id, 30, 0, t);
        }
    }
    (h, rx)
}

/// Two proxies that have served nothing yet, alerts collected.
fn fleet_without_history() -> (Harness, mpsc::UnboundedReceiver<Decision>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let files = StateFiles::open(dir.path()).expect("state files");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut engine =
        Engine::open(policy(), files, Arc::clone(&cache), metrics, Some(tx)).expect("engine");
    for id in FLEET {
        engine.on_connect(&super::tests::node(id), 0);
    }
    (Harness { engine, cache, dir }, rx)
}

/// Releases `a` with `failure_policy` at 2 000 ms, ACKed by both; then each proxy answers
/// every request 5xx until a decision: what the rollout record holds then.
fn first_version_fails(h: &mut Harness, failure_policy: FailurePolicy) -> PluginRecord {
    let a = Release {
        failure_policy,
        ..release("a")
    };
    h.engine.release(PLUGIN, a, 2_000).expect("release a");
    h.ack_all(&FLEET, 2_010);
    assert_eq!(h.record().rollout.map(|r| r.stage), Some(Stage::Bake));
    for t in (2_500..6_000).step_by(500) {
        for id in FLEET {
            h.flush(id, 30, 30, t);
        }
        h.engine.tick(t);
        let record = h.record();
        let decided = record.rollout.as_ref().is_none_or(|r| r.paused.is_some());
        if decided {
            return record;
        }
    }
    panic!("no decision: {:?}", h.record());
}

fn alerted(rx: &mut mpsc::UnboundedReceiver<Decision>) -> Vec<Decision> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[test]
fn a_failing_first_version_with_fail_closed_is_kept_paused_and_alerted() {
    let (mut h, mut rx) = fleet();
    let record = first_version_fails(&mut h, FailurePolicy::FailClosed);
    let paused = record.rollout.and_then(|r| r.paused).expect("paused");
    assert!(paused.manual, "only a person lifts it");
    assert!(
        paused.reason.contains("failurePolicy failClosed"),
        "{}",
        paused.reason
    );
    assert!(paused.reason.contains("5xx ratio"), "{}", paused.reason);
    for id in FLEET {
        assert_eq!(h.served(id), Some(release("a").version), "{id} keeps it");
        let node = h.engine.nodes().get(id).expect("node");
        let failing = node.filters[PLUGIN].failing.as_ref().expect("failing");
        assert!(failing.reason.starts_with("5xx ratio"), "{id}: {failing:?}");
        assert!(!node.filters[PLUGIN].healthy());
    }
    let alerts = alerted(&mut rx);
    assert_eq!(alerts.len(), 1, "one alert: {alerts:?}");
    assert_eq!(alerts[0].action, "pause");
    // Still failing: no second alert, and nothing moves on its own.
    for t in (6_000..9_000).step_by(500) {
        for id in FLEET {
            h.flush(id, 30, 30, t);
        }
        h.engine.tick(t);
    }
    assert!(alerted(&mut rx).is_empty());
    assert!(h.record().rollout.is_some_and(|r| r.paused.is_some()));
    assert_eq!(h.record().last_good, None);
}

#[test]
fn a_failing_first_version_with_fail_open_is_taken_off_every_proxy() {
    let (mut h, mut rx) = fleet();
    let record = first_version_fails(&mut h, FailurePolicy::FailOpen);
    assert_eq!(record.rollout, None);
    assert_eq!(record.last_good, None);
    let quarantined = &record.quarantine[&release("a").version];
    assert!(
        quarantined.reason.contains("failOpen"),
        "{}",
        quarantined.reason
    );
    for id in FLEET {
        assert_eq!(
            h.served(id),
            Some(Release::pass_through().version),
            "{id} skips the filter again"
        );
    }
    let alerts = alerted(&mut rx);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].action, "rollback");
}

#[test]
fn a_first_version_with_no_traffic_before_it_is_promoted_after_the_bake() {
    let (mut h, _rx) = fleet_without_history();
    h.engine.release(PLUGIN, release("a"), 2_000).expect("a");
    h.ack_all(&FLEET, 2_010);
    for t in (2_500..4_000).step_by(500) {
        for id in FLEET {
            h.flush(id, 30, 30, t);
        }
        h.engine.tick(t);
    }
    assert_eq!(
        h.record().last_good,
        Some(release("a")),
        "nothing to judge against"
    );
}
