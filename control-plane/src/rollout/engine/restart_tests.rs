//! The engine across restarts and late proxies: deadlines count only time the control plane
//! was up, a rollout started with nobody connected picks its cohorts when proxies come, and
//! proxies gone for long are forgotten.

use super::tests::{FLEET, Harness, PLUGIN, canary_of, node, policy, with_last_good};
use super::*;
use crate::rollout::engine::tests::release;
use crate::rollout::progress::RECONNECT_GRACE_MS;
use crate::rollout::state::StateFiles;

fn close(h: &mut Harness, id: &str, now: u64) {
    let event = XdsEvent::StreamClosed {
        stream: 1,
        node: node(id),
    };
    h.engine.on_event(&event, now);
}

/// The engine stops (kill -9: nothing saved beyond what it saved as it went) and a new one
/// opens the same state folder at `now`.
fn restart(h: &mut Harness, now: u64) {
    let files = StateFiles::open(h.dir.path()).expect("reopen");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut engine =
        Engine::open(policy(), files, Arc::clone(&h.cache), metrics, None).expect("engine");
    engine.resume_clocks(now);
    h.engine = engine;
}

#[test]
fn downtime_after_a_push_does_not_count_against_the_ack_deadline() {
    let mut h = with_last_good();
    h.engine.tick(900); // up and watching
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = canary_of(&h);
    // Down for 5 minutes, far past the 10 s ACK deadline; back at 301 000.
    restart(&mut h, 301_000);
    for id in FLEET {
        h.engine.on_connect(&node(id), 301_000);
    }
    h.engine.tick(301_100);
    let record = h.record();
    assert!(record.quarantine.is_empty(), "{:?}", record.quarantine);
    let rollout = record.rollout.expect("the rollout goes on");
    assert!(rollout.pushed[&canary] >= 300_000, "{rollout:?}");
    h.ack(&canary, 301_200);
    h.engine.tick(312_000);
    assert!(h.record().quarantine.is_empty());
    // A canary that never comes back still fails, on up time: Envoy's longest reconnect
    // backoff, then the ACK deadline.
    let mut h = with_last_good();
    h.engine.tick(900);
    h.engine.release(PLUGIN, release("c"), 1_000).expect("c");
    restart(&mut h, 301_000);
    h.engine.tick(312_000);
    assert!(
        h.record().quarantine.is_empty(),
        "not within the reconnect grace"
    );
    h.engine.tick(301_000 + RECONNECT_GRACE_MS + 10_100);
    assert!(h.record().quarantine.contains_key(&release("c").version));
}

#[test]
fn a_rollout_begun_with_no_proxy_connected_picks_its_cohorts_when_they_connect() {
    let mut h = with_last_good();
    for id in FLEET {
        close(&mut h, id, 500);
    }
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let rollout = h.record().rollout.expect("rollout");
    assert!(rollout.canary.is_empty() && rollout.baseline.is_empty());
    for id in FLEET {
        h.engine.on_connect(&node(id), 60_000);
    }
    h.engine.tick(60_100);
    let rollout = h.record().rollout.expect("rollout");
    assert_eq!(rollout.canary.len(), 1, "{rollout:?}");
    assert_eq!(rollout.baseline.len(), 1, "{rollout:?}");
    assert_eq!(rollout.stage_started_ms, 60_100);
    let canary = canary_of(&h);
    assert_eq!(h.served(&canary), Some(release("b").version));
    let log = h.engine.decisions().expect("log");
    assert!(log.iter().any(|d| d.action == "cohort"), "{log:?}");
}

#[test]
fn proxies_disconnected_too_long_are_forgotten_unless_a_rollout_counts_them() {
    let mut h = with_last_good();
    close(&mut h, "n4", 1_000);
    assert!(h.engine.forget_disconnected(2_000, 60_000).is_empty());
    assert_eq!(h.engine.forget_disconnected(62_000, 60_000), ["n4"]);
    assert!(h.engine.nodes().get("n4").is_none());
    assert!(!h.cache.groups().contains(&"n4".to_string()));
    // A canary of a rollout in progress is kept while the rollout lasts.
    h.engine.release(PLUGIN, release("b"), 70_000).expect("b");
    let canary = canary_of(&h);
    close(&mut h, &canary, 70_001);
    assert!(h.engine.forget_disconnected(200_000, 60_000).is_empty());
    assert!(h.engine.nodes().get(&canary).is_some());
}

#[test]
fn a_crash_looping_control_plane_does_not_fail_a_canary_it_never_got_to_hear() {
    let mut h = with_last_good();
    h.engine.tick(900);
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = canary_of(&h);
    // 15 lives of 900 ms, 100 ms apart: 13.5 s of up time, the proxies never reconnect (each
    // life is shorter than the reconnect grace and the ACK deadline together).
    let mut now = 1_000;
    for _ in 0..15 {
        now += 100;
        restart(&mut h, now);
        h.engine.tick(now + 100);
        h.engine.tick(now + 900);
        now += 900;
    }
    assert!(
        h.record().quarantine.is_empty(),
        "{:?}",
        h.record().quarantine
    );
    now += 100;
    restart(&mut h, now);
    h.engine.on_connect(&node(&canary), now + 50);
    h.ack(&canary, now + 60);
    h.engine.tick(now + 200);
    assert!(h.record().quarantine.is_empty());
    // Seen, then gone without an ACK: that counts, as before.
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("c"), 1_000).expect("c");
    let canary = canary_of(&h);
    close(&mut h, &canary, 1_100);
    h.engine.tick(12_000);
    assert!(h.record().quarantine.contains_key(&release("c").version));
}

#[test]
fn what_ingest_published_is_the_engines_and_survives_a_restart() {
    let mut h = Harness::new(&FLEET);
    h.engine.release(PLUGIN, release("a"), 10).expect("a");
    h.engine.release(PLUGIN, release("a"), 20).expect("a again");
    let version = release("a").version;
    assert_eq!(h.engine.published(PLUGIN), (Some(version.as_str()), 2));
    let files = StateFiles::open(h.dir.path()).expect("reopen");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let reopened =
        Engine::open(policy(), files, Arc::clone(&h.cache), metrics, None).expect("reopen");
    assert_eq!(reopened.published(PLUGIN), (Some(version.as_str()), 2));
}
