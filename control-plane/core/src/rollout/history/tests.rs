use super::*;
use crate::rollout::record::{Quarantined, Release};

fn with_bad(spans: &[(Option<u64>, u64)]) -> PluginRecord {
    let mut record = PluginRecord::default();
    for (i, (started_ms, at_ms)) in spans.iter().enumerate() {
        record.quarantine.insert(
            format!("v{i}"),
            Quarantined {
                release: Release::for_tests(&format!("v{i}")),
                reason: "bad".into(),
                at_ms: *at_ms,
                started_ms: *started_ms,
            },
        );
    }
    record
}

#[test]
fn without_a_rollback_the_whole_window_counts() {
    let spans = clean_spans(&PluginRecord::default(), (100, 1_000), 50);
    assert_eq!(spans, [(100, 1_000)]);
}

#[test]
fn the_bad_versions_span_is_left_out_settle_included() {
    let spans = clean_spans(&with_bad(&[(Some(400), 600)]), (100, 1_000), 50);
    assert_eq!(spans, [(100, 400), (651, 1_000)]);
}

#[test]
fn overlapping_and_outside_spans_merge_or_drop() {
    let record = with_bad(&[(Some(300), 500), (Some(450), 700), (Some(0), 50)]);
    let spans = clean_spans(&record, (100, 1_000), 0);
    assert_eq!(spans, [(100, 300), (701, 1_000)]);
}

#[test]
fn without_its_start_everything_before_the_rollback_is_out() {
    let spans = clean_spans(&with_bad(&[(None, 600)]), (100, 1_000), 0);
    assert_eq!(spans, [(601, 1_000)]);
}

#[test]
fn a_window_inside_a_bad_span_has_no_history() {
    let spans = clean_spans(&with_bad(&[(Some(0), 2_000)]), (100, 1_000), 0);
    assert!(spans.is_empty(), "{spans:?}");
}
