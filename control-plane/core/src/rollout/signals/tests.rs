use super::*;

fn histogram(count: u64, fast: u64) -> Histogram {
    Histogram {
        count,
        buckets: vec![(100.0, fast / 2), (250.0, fast), (500.0, count)],
    }
}

fn flush(completed: u64, errors: u64, hist: Option<Histogram>, uptime: u64) -> FlushSample {
    FlushSample {
        completed,
        rq_5xx: errors,
        rq_time: hist,
        uptime_s: Some(uptime),
        ..FlushSample::default()
    }
}

#[test]
fn totals_sum_the_window_of_interval_histograms() {
    let mut node = NodeSignals::default();
    node.record(1_000, &flush(10, 1, Some(histogram(10, 10)), 5), 250.0);
    node.record(2_000, &flush(20, 2, Some(histogram(20, 15)), 6), 250.0);
    node.record(3_000, &flush(30, 0, Some(histogram(30, 15)), 7), 250.0);
    let all = node.totals(0, 10_000, "authz");
    assert_eq!((all.completed, all.rq_5xx), (60, 3));
    assert_eq!((all.timed, all.slow), (60, 20));
    let last = node.totals(2_500, 10_000, "authz");
    assert_eq!((last.completed, last.timed, last.slow), (30, 30, 15));
}

#[test]
fn uptime_going_down_is_a_restart() {
    let mut node = NodeSignals::default();
    node.record(1_000, &flush(0, 0, None, 50), 250.0);
    node.record(2_000, &flush(5, 0, None, 1), 250.0);
    assert_eq!(node.restart_after(0), Some(2_000));
    assert_eq!(node.restart_after(2_000), None);
}

#[test]
fn load_errors_and_heartbeats_are_per_filter() {
    let mut node = NodeSignals::default();
    let mut sample = flush(4, 0, None, 3);
    sample.load_errors.insert("authz".into(), 1);
    sample.heartbeats.insert("authz".into(), 4);
    node.record(5_000, &sample, 250.0);
    assert_eq!(node.load_errors_since("authz", 4_000), 1);
    assert_eq!(node.load_errors_since("authz", 5_000), 0);
    assert_eq!(node.load_errors_since("ratelimit", 0), 0);
    assert_eq!(node.totals(0, 6_000, "authz").heartbeats, 4);
    assert_eq!(node.totals(0, 6_000, "ratelimit").heartbeats, 0);
}

fn with_load_error(at_ms: u64, node: &mut NodeSignals) {
    let mut sample = flush(0, 0, None, at_ms / 1000);
    sample.load_errors.insert("authz".into(), 1);
    node.record(at_ms, &sample, 250.0);
}

#[test]
fn an_earlier_nacks_late_count_is_not_the_next_versions_load_error() {
    // NACK at 1_000, next version pushed at 1_400, the NACK's count flushed at 1_900.
    let mut node = NodeSignals::default();
    node.record(500, &flush(0, 0, None, 1), 250.0);
    with_load_error(1_900, &mut node);
    assert_eq!(node.load_errors_after("authz", 1_400, Some(1_000)), 0);
    // Without an earlier NACK, or for a NACK older than what is retained, it counts.
    assert_eq!(node.load_errors_after("authz", 1_400, None), 1);
    assert_eq!(node.load_errors_after("authz", 1_400, Some(100)), 1);
    // A second rejection after the push is the new version's.
    with_load_error(2_900, &mut node);
    assert_eq!(node.load_errors_after("authz", 1_400, Some(1_000)), 1);
}

#[test]
fn an_earlier_nack_already_counted_before_the_push_explains_nothing_after_it() {
    let mut node = NodeSignals::default();
    node.record(500, &flush(0, 0, None, 1), 250.0);
    with_load_error(1_200, &mut node);
    with_load_error(1_900, &mut node);
    assert_eq!(node.load_errors_after("authz", 1_400, Some(1_000)), 1);
}
