//! The traffic gate's history baseline (a fleet too small for a baseline cohort compares the
//! canary with its own traffic before the push) holds only traffic from after the last
//! rollback and from before the bad version's rollout: its errors are not held against the
//! next one, and a release right after the rollback still has a history.

use super::tests::{Harness, PLUGIN, release};

#[test]
fn the_history_after_a_rollback_leaves_out_the_bad_versions_traffic() {
    let mut h = Harness::new(&["n1"]);
    h.engine.release(PLUGIN, release("a"), 10).expect("a");
    h.ack("n1", 20);
    for second in 1..=10 {
        h.flush("n1", 100, 0, second * 1_000);
    }
    h.engine.release(PLUGIN, release("b"), 11_000).expect("b");
    h.ack("n1", 11_010);
    let mut now = 11_010;
    while h.record().rollout.is_some() && now < 40_000 {
        now += 500;
        h.flush("n1", 100, 100, now);
        h.engine.tick(now);
    }
    let record = h.record();
    assert!(
        record
            .quarantine
            .values()
            .any(|q| q.release == release("b")),
        "b is rolled back: {record:?}"
    );
    h.ack("n1", now + 10);
    for i in 1..=4 {
        h.flush("n1", 100, 0, now + i * 500);
    }
    h.engine
        .release(PLUGIN, release("c"), now + 2_500)
        .expect("c");
    let rollout = h.record().rollout.expect("c rolls out");
    assert!(rollout.baseline.is_empty(), "one proxy: a history baseline");
    let history = rollout.history["n1"];
    assert_eq!(
        history.rq_5xx, 0,
        "b's errors are not c's baseline: {history:?}"
    );
    assert_eq!(
        history.completed, 1_400,
        "a's traffic before b and since the rollback counts: {history:?}"
    );
}
