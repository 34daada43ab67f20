use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::rollout::decide::Stage;
use crate::rollout::record::Release;
use crate::rollout::signals::FlushSample;
use crate::rollout::traffic::Totals;

fn rollout(first: bool, failure_policy: FailurePolicy) -> Rollout {
    let to = Release {
        failure_policy,
        ..Release::for_tests("b")
    };
    Rollout {
        id: "authz-b-1".into(),
        from: (!first).then(|| Release::for_tests("a")),
        to,
        stage: Stage::Bake,
        stage_started_ms: 1_000,
        started_ms: 1_000,
        paused: None,
        canary: BTreeSet::new(),
        baseline: BTreeSet::new(),
        pushed: BTreeMap::new(),
        failing_looks: 0,
        last_look_ms: 1_000,
        history: BTreeMap::from([
            ("n1".to_string(), ok(400, 0)),
            ("n2".to_string(), ok(400, 0)),
        ]),
    }
}

fn ok(completed: u64, rq_5xx: u64) -> Totals {
    Totals {
        completed,
        rq_5xx,
        ..Totals::default()
    }
}

fn traffic_failed(reason: &str) -> Verdict {
    Verdict::Rollback {
        gate: Gate::Traffic,
        reason: reason.into(),
    }
}

#[test]
fn a_failing_first_version_follows_its_failure_policy() {
    let (verdict, for_a_person) = first_version_verdict(
        &rollout(true, FailurePolicy::FailOpen),
        traffic_failed("5xx"),
    );
    match verdict {
        Verdict::Rollback { gate, reason } => {
            assert_eq!(gate, Gate::Traffic);
            assert!(
                reason.contains("failOpen takes it off every proxy"),
                "{reason}"
            );
            assert!(reason.ends_with(": 5xx"), "{reason}");
        }
        other => panic!("failOpen removes it: {other:?}"),
    }
    assert!(!for_a_person);
    for (policy, name) in [
        (FailurePolicy::FailClosed, "failClosed"),
        (FailurePolicy::Reload, "reload"),
    ] {
        let (verdict, for_a_person) =
            first_version_verdict(&rollout(true, policy), traffic_failed("5xx"));
        match verdict {
            Verdict::Pause { reason } => {
                assert!(
                    reason.contains(&format!("failurePolicy {name}")),
                    "{reason}"
                );
                assert!(reason.contains("kept"), "{reason}");
            }
            other => panic!("{name} keeps it and pauses: {other:?}"),
        }
        assert!(for_a_person, "only a person lifts the pause");
    }
}

#[test]
fn only_a_running_filters_gates_on_a_first_version_change() {
    let first = rollout(true, FailurePolicy::FailClosed);
    for gate in [Gate::Acceptance, Gate::Fetch, Gate::Deadline] {
        let verdict = Verdict::Rollback {
            gate,
            reason: "r".into(),
        };
        assert_eq!(
            first_version_verdict(&first, verdict.clone()),
            (verdict, false)
        );
    }
    for gate in [Gate::Loaded, Gate::Liveness] {
        let verdict = Verdict::Rollback {
            gate,
            reason: "r".into(),
        };
        assert!(matches!(
            first_version_verdict(&first, verdict).0,
            Verdict::Pause { .. }
        ));
    }
    let later = rollout(false, FailurePolicy::FailClosed);
    let verdict = traffic_failed("5xx");
    assert_eq!(
        first_version_verdict(&later, verdict.clone()),
        (verdict, false),
        "a version with a last good rolls back as before"
    );
    let hold = Verdict::Hold { reason: "h".into() };
    assert_eq!(first_version_verdict(&first, hold.clone()), (hold, false));
}

fn signals(flushes: &[(&str, u64, u64)]) -> HashMap<String, NodeSignals> {
    let mut all: HashMap<String, NodeSignals> = HashMap::new();
    for (i, (node, completed, rq_5xx)) in flushes.iter().enumerate() {
        let sample = FlushSample {
            completed: *completed,
            rq_5xx: *rq_5xx,
            ..FlushSample::default()
        };
        all.entry(node.to_string())
            .or_default()
            .record(2_000 + i as u64, &sample, 250.0);
    }
    all
}

fn canary(id: &str, acked: bool, load_errors: u64) -> CanaryNode {
    CanaryNode {
        load_errors,
        ..CanaryNode::for_tests(id, acked)
    }
}

#[test]
fn each_proxy_is_judged_on_its_own_traffic_against_its_own_history() {
    let rollout = rollout(true, FailurePolicy::FailClosed);
    let traffic = TrafficInput {
        canary: ok(400, 200),
        baseline: ok(800, 0),
        baseline_kind: BaselineKind::History,
        stale_nodes: Vec::new(),
    };
    let look = NodeLook {
        plugin: "authz",
        rollout: &rollout,
        policy: &TrafficPolicy::default(),
        traffic: &traffic,
        window: (1_500, 10_000),
        now_ms: 9_999,
    };
    // n1 fails every request, n2 is fine, n3 has too few requests, n4 has load errors, n5
    // has not ACKed.
    let flushes = signals(&[
        ("n1", 200, 200),
        ("n2", 200, 0),
        ("n3", 5, 5),
        ("n5", 200, 200),
    ]);
    let nodes = [
        canary("n1", true, 0),
        canary("n2", true, 0),
        canary("n3", true, 0),
        canary("n4", true, 2),
        canary("n5", false, 0),
    ];
    let looks = node_looks(&look, &nodes, &flushes);
    let by_node: BTreeMap<&str, Option<&str>> = looks
        .iter()
        .map(|h| (h.node.as_str(), h.failing.as_deref()))
        .collect();
    assert!(
        by_node["n1"].is_some_and(|r| r.starts_with("5xx ratio")),
        "{looks:?}"
    );
    assert_eq!(by_node["n2"], None);
    assert!(!by_node.contains_key("n3"), "inconclusive: left as it was");
    assert_eq!(by_node["n4"], Some("2 load errors since the push"));
    assert!(!by_node.contains_key("n5"), "not running it");
    assert!(
        looks
            .iter()
            .all(|h| h.version == rollout.to.version && h.at_ms == 9_999)
    );
}
