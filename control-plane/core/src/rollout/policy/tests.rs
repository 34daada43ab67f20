use super::*;

#[test]
fn cohort_sizes_round_up_and_stay_within_the_fleet() {
    let one = Step::nodes(1, Duration::ZERO, 0);
    let quarter = Step::percent(25, Duration::ZERO, 0);
    let all = Step::percent(100, Duration::ZERO, 0);
    assert_eq!(one.cohort_size(10), 1);
    assert_eq!(quarter.cohort_size(10), 3);
    assert_eq!(quarter.cohort_size(1), 1);
    assert_eq!(all.cohort_size(7), 7);
    assert_eq!(Step::nodes(5, Duration::ZERO, 0).cohort_size(2), 2);
    assert_eq!(all.cohort_size(0), 0);
}

#[test]
fn json_with_human_durations_parses() {
    let policy = Policy::from_json(
        br#"{"steps":[{"nodes":1,"minDuration":"2s","minRequests":20},{"percent":100}],
             "bake":"3s","lookInterval":"500ms","failingLooks":2}"#,
    )
    .expect("valid policy");
    assert_eq!(policy.steps.len(), 2);
    assert_eq!(policy.steps[0].min_duration, Duration::from_secs(2));
    assert_eq!(policy.look_interval, Duration::from_millis(500));
    assert_eq!(policy.ack_deadline, Policy::default().ack_deadline);
}

#[test]
fn bad_policies_say_which_field() {
    let cases: [(&[u8], &str); 5] = [
        (br#"{"steps":[]}"#, "steps"),
        (br#"{"steps":[{"nodes":1,"percent":5}]}"#, "steps[0]"),
        (br#"{"steps":[{"percent":150}]}"#, "steps[0].percent"),
        (br#"{"failingLooks":0}"#, "failingLooks"),
        (br#"{"stpes":[]}"#, "unknown field `stpes`"),
    ];
    for (json, expected) in cases {
        let err = Policy::from_json(json).expect_err("must be refused");
        assert!(err.contains(expected), "{err} should mention {expected}");
    }
}
