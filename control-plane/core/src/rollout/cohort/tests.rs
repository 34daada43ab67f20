use std::time::Duration;

use super::*;

fn fleet(n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("node-{i:03}")).collect()
}

#[test]
fn canary_and_baseline_are_disjoint_and_equal_where_the_fleet_allows() {
    let step = Step::percent(25, Duration::ZERO, 0);
    let cohorts = choose("r1", &step, &fleet(20), &BTreeSet::new());
    assert_eq!(cohorts.canary.len(), 5);
    assert_eq!(cohorts.baseline.len(), 5);
    assert!(cohorts.canary.is_disjoint(&cohorts.baseline));
}

#[test]
fn the_same_rollout_chooses_the_same_nodes_and_another_may_not() {
    let step = Step::nodes(3, Duration::ZERO, 0);
    let a = choose("r1", &step, &fleet(50), &BTreeSet::new());
    let b = choose("r1", &step, &fleet(50), &BTreeSet::new());
    assert_eq!(a, b);
    let others: Vec<Cohorts> = (2..10)
        .map(|i| choose(&format!("r{i}"), &step, &fleet(50), &BTreeSet::new()))
        .collect();
    assert!(others.iter().any(|c| c.canary != a.canary));
}

#[test]
fn later_steps_keep_earlier_canaries() {
    let nodes = fleet(12);
    let first = choose(
        "r",
        &Step::nodes(1, Duration::ZERO, 0),
        &nodes,
        &BTreeSet::new(),
    );
    let second = choose(
        "r",
        &Step::percent(50, Duration::ZERO, 0),
        &nodes,
        &first.canary,
    );
    assert!(first.canary.is_subset(&second.canary));
    assert_eq!(second.canary.len(), 6);
    assert_eq!(second.baseline.len(), 6);
}

#[test]
fn one_node_fleet_has_no_baseline() {
    let cohorts = choose(
        "r",
        &Step::nodes(1, Duration::ZERO, 0),
        &fleet(1),
        &BTreeSet::new(),
    );
    assert_eq!(cohorts.canary.len(), 1);
    assert!(cohorts.baseline.is_empty());
}

#[test]
fn full_step_takes_everyone() {
    let cohorts = choose(
        "r",
        &Step::percent(100, Duration::ZERO, 0),
        &fleet(9),
        &BTreeSet::new(),
    );
    assert_eq!(cohorts.canary, fleet(9));
    assert!(cohorts.baseline.is_empty());
}
