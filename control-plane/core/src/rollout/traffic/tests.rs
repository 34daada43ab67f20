use super::*;

fn totals(completed: u64, rq_5xx: u64, slow: u64) -> Totals {
    Totals {
        completed,
        rq_5xx,
        timed: completed,
        slow,
        heartbeats: 0,
    }
}

#[test]
fn wilson_bounds_hold_the_point_estimate() {
    for (k, n) in [(0, 10), (5, 10), (10, 10), (1, 1000), (999, 1000)] {
        let (low, high) = wilson(k, n, 2.576);
        let p = k as f64 / n as f64;
        assert!(low <= p && p <= high, "{k}/{n}: {low}..{high}");
        assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
    }
    assert_eq!(wilson(0, 0, 2.0), (0.0, 1.0));
}

#[test]
fn a_table_of_looks() {
    let policy = TrafficPolicy::default();
    let cases = [
        (
            "all 500s fail",
            totals(200, 200, 0),
            totals(200, 0, 0),
            "fail",
        ),
        (
            "same errors pass",
            totals(500, 5, 0),
            totals(500, 4, 0),
            "pass",
        ),
        (
            "a little worse passes",
            totals(500, 10, 0),
            totals(500, 2, 0),
            "pass",
        ),
        (
            "too few is inconclusive",
            totals(10, 10, 0),
            totals(200, 0, 0),
            "inconclusive",
        ),
        (
            "slow canary fails",
            totals(300, 0, 300),
            totals(300, 0, 3),
            "fail",
        ),
        (
            "sick baseline pauses",
            totals(300, 100, 0),
            totals(300, 150, 0),
            "baseline",
        ),
    ];
    for (name, canary, baseline, expected) in cases {
        let look = compare(&policy, &canary, &baseline);
        let kind = match &look {
            TrafficLook::Pass => "pass",
            TrafficLook::Fail { .. } => "fail",
            TrafficLook::Inconclusive { .. } => "inconclusive",
            TrafficLook::BaselineUnhealthy { .. } => "baseline",
        };
        assert_eq!(kind, expected, "{name}: {look:?}");
    }
}

#[test]
fn a_heartbeat_drop_means_the_filter_was_bypassed() {
    let policy = TrafficPolicy::default();
    let baseline = Totals {
        heartbeats: 400,
        ..totals(400, 0, 0)
    };
    let canary = Totals {
        heartbeats: 0,
        ..totals(400, 0, 0)
    };
    let look = compare(&policy, &canary, &baseline);
    assert!(
        matches!(&look, TrafficLook::Fail { reason } if reason.contains("heartbeat")),
        "{look:?}"
    );
}

#[test]
fn the_fail_reason_names_the_numbers() {
    let look = compare(
        &TrafficPolicy::default(),
        &totals(100, 100, 0),
        &totals(100, 0, 0),
    );
    let TrafficLook::Fail { reason } = look else {
        panic!("expected a fail");
    };
    assert!(
        reason.contains("100/100") && reason.contains("0/100"),
        "{reason}"
    );
}
