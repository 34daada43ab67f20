use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::rollout::policy::Step;

fn policy() -> Policy {
    Policy {
        steps: vec![
            Step::nodes(1, Duration::from_secs(10), 100),
            Step::percent(100, Duration::from_secs(10), 100),
        ],
        bake: Duration::from_secs(5),
        failing_looks: 2,
        ..Policy::default()
    }
}

fn node(acked: bool) -> CanaryNode {
    CanaryNode::for_tests("n1", acked)
}

fn traffic(canary_5xx: u64, baseline_5xx: u64) -> TrafficInput {
    let totals = |errors| Totals {
        completed: 500,
        rq_5xx: errors,
        timed: 500,
        slow: 0,
        heartbeats: 0,
    };
    TrafficInput {
        canary: totals(canary_5xx),
        baseline: totals(baseline_5xx),
        baseline_kind: BaselineKind::Cohort,
        stale_nodes: Vec::new(),
    }
}

fn input<'a>(policy: &'a Policy, canary: &'a [CanaryNode], now_ms: u64) -> LookInput<'a> {
    LookInput {
        now_ms,
        policy,
        stage: Stage::Step(0),
        stage_started_ms: 1_000,
        canary,
        traffic: None,
        failing_looks: 0,
        paused: false,
    }
}

fn gate_of(look: &Look) -> Option<Gate> {
    match look.verdict {
        Verdict::Rollback { gate, .. } => Some(gate),
        _ => None,
    }
}

#[test]
fn a_nack_rolls_back_at_once() {
    let policy = policy();
    let canary = [CanaryNode {
        nack: Some("Failed to configure base Wasm plugin".into()),
        ..node(false)
    }];
    let look = decide(&input(&policy, &canary, 1_001));
    assert_eq!(gate_of(&look), Some(Gate::Acceptance));
}

#[test]
fn a_tolerated_share_of_nacks_does_not_roll_back() {
    let mut policy = policy();
    policy.max_reject_share = 0.25;
    let nacked = CanaryNode {
        id: "n2".into(),
        nack: Some("old Envoy".into()),
        ..node(false)
    };
    let canary = [node(true), nacked.clone(), node(true), node(true)];
    let look = decide(&input(&policy, &canary, 1_000));
    assert_eq!(gate_of(&look), None, "{look:?}");
    let canary = [node(true), nacked.clone(), nacked];
    let look = decide(&input(&policy, &canary, 1_000));
    assert_eq!(gate_of(&look), Some(Gate::Acceptance), "{look:?}");
}

#[test]
fn no_ack_from_a_proxy_without_the_slot_says_so() {
    let policy = policy();
    let canary = [CanaryNode {
        no_slot: Some(vec!["authz".into(), "ratelimit".into()]),
        ..node(false)
    }];
    let after = decide(&input(&policy, &canary, 1_000 + 10_001));
    let Verdict::Rollback { gate, reason } = &after.verdict else {
        panic!("{after:?}");
    };
    assert_eq!(*gate, Gate::Acceptance);
    assert!(
        reason.contains("none of its listeners has a slot for this plugin")
            && reason.contains("(its ECDS slots: authz, ratelimit)"),
        "{reason}"
    );
}

#[test]
fn no_ack_by_the_deadline_rolls_back_but_not_before() {
    let policy = policy();
    let canary = [node(false)];
    let before = decide(&input(&policy, &canary, 1_000 + 9_000));
    assert!(matches!(before.verdict, Verdict::Hold { .. }), "{before:?}");
    let after = decide(&input(&policy, &canary, 1_000 + 10_001));
    assert_eq!(gate_of(&after), Some(Gate::Acceptance));
}

#[test]
fn a_fetch_failure_waits_for_the_fetch_deadline_then_fails_the_fetch_gate() {
    let policy = policy();
    let canary = [CanaryNode {
        fetch_failure: Some("connection refused".into()),
        ..node(false)
    }];
    // Past the ACK deadline, still inside the fetch deadline: it waits, saying why.
    let waiting = decide(&input(&policy, &canary, 1_000 + 60_000));
    match &waiting.verdict {
        Verdict::Hold { reason } => assert!(
            reason.contains("n1 (fetch failed, retrying: connection refused)"),
            "{reason}"
        ),
        other => panic!("expected a hold, got {other:?}"),
    }
    let after = decide(&input(&policy, &canary, 1_000 + 300_001));
    assert_eq!(gate_of(&after), Some(Gate::Fetch), "{after:?}");
    // Behind an agent with no answer yet: fetching, with the fetch deadline too.
    let silent = [CanaryNode {
        behind_agent: true,
        ..node(false)
    }];
    let look = decide(&input(&policy, &silent, 1_000 + 60_000));
    assert!(
        matches!(&look.verdict, Verdict::Hold { reason } if reason.contains("n1 (fetching)")),
        "{look:?}"
    );
    let look = decide(&input(&policy, &silent, 1_000 + 300_001));
    assert_eq!(gate_of(&look), Some(Gate::Fetch), "{look:?}");
    // Fetched and ACKed after a failure: no gate.
    let fetched = [CanaryNode {
        fetch_failure: None,
        ..node(true)
    }];
    assert_eq!(gate_of(&decide(&input(&policy, &fetched, 400_000))), None);
}

#[test]
fn load_errors_and_restarts_in_the_window_roll_back() {
    let policy = policy();
    let loaded = [CanaryNode {
        load_errors: 1,
        ..node(true)
    }];
    assert_eq!(
        gate_of(&decide(&input(&policy, &loaded, 2_000))),
        Some(Gate::Loaded)
    );
    let crashed = [CanaryNode {
        restarted_at_ms: Some(4_000),
        ..node(true)
    }];
    assert_eq!(
        gate_of(&decide(&input(&policy, &crashed, 5_000))),
        Some(Gate::Liveness)
    );
    let late = [CanaryNode {
        restarted_at_ms: Some(1_000 + 121_000),
        ..node(true)
    }];
    assert_eq!(gate_of(&decide(&input(&policy, &late, 200_000))), None);
}

#[test]
fn traffic_fails_only_after_k_looks() {
    let policy = policy();
    let canary = [node(true)];
    let mut first = input(&policy, &canary, 20_000);
    first.traffic = Some(traffic(500, 0));
    let look = decide(&first);
    assert!(matches!(look.verdict, Verdict::Hold { .. }), "{look:?}");
    assert_eq!(look.failing_looks, 1);
    let mut second = first.clone();
    second.failing_looks = look.failing_looks;
    assert_eq!(gate_of(&decide(&second)), Some(Gate::Traffic));
}

#[test]
fn a_good_step_advances_after_its_duration() {
    let policy = policy();
    let canary = [node(true)];
    let mut early = input(&policy, &canary, 5_000);
    early.traffic = Some(traffic(1, 1));
    assert!(matches!(decide(&early).verdict, Verdict::Hold { .. }));
    let mut done = input(&policy, &canary, 12_000);
    done.traffic = Some(traffic(1, 1));
    let look = decide(&done);
    assert!(matches!(look.verdict, Verdict::Advance { .. }), "{look:?}");
    assert_eq!(look.failing_looks, 0);
}

#[test]
fn a_stale_feed_or_a_sick_baseline_pauses() {
    let policy = policy();
    let canary = [node(true)];
    let mut stale = input(&policy, &canary, 12_000);
    stale.traffic = Some(TrafficInput {
        stale_nodes: vec!["n2".into()],
        ..traffic(0, 0)
    });
    assert!(matches!(decide(&stale).verdict, Verdict::Pause { .. }));
    let mut sick = input(&policy, &canary, 12_000);
    sick.traffic = Some(traffic(300, 300));
    assert!(matches!(decide(&sick).verdict, Verdict::Pause { .. }));
}

#[test]
fn inconclusive_past_the_deadline_follows_the_policy() {
    let mut policy = policy();
    policy.step_deadline = Duration::from_secs(30);
    let canary = [node(true)];
    let mut late = input(&policy, &canary, 40_000);
    late.traffic = Some(TrafficInput {
        canary: Totals::default(),
        ..traffic(0, 0)
    });
    assert!(matches!(decide(&late).verdict, Verdict::Pause { .. }));
    let traffic = late.traffic.clone();
    policy.at_deadline = crate::rollout::policy::DeadlineAction::Rollback;
    let mut late = input(&policy, &canary, 40_000);
    late.traffic = traffic;
    assert_eq!(gate_of(&decide(&late)), Some(Gate::Deadline));
}

#[test]
fn immediate_policy_advances_on_ack_without_traffic() {
    let policy = Policy::immediate();
    let canary = [node(true)];
    let look = decide(&input(&policy, &canary, 1_000));
    assert!(matches!(look.verdict, Verdict::Advance { .. }), "{look:?}");
}

#[test]
fn a_bake_with_a_failing_streak_waits_for_the_next_look() {
    let policy = policy();
    let canary = [node(true)];
    let bake = |failing_looks| LookInput {
        stage: Stage::Bake,
        failing_looks,
        ..input(&policy, &canary, 60_000)
    };
    let look = decide(&bake(1));
    assert!(
        matches!(&look.verdict, Verdict::Hold { reason } if reason.contains("1 failing")),
        "the bake is long over, but one look failed: {look:?}"
    );
    assert!(matches!(decide(&bake(0)).verdict, Verdict::Advance { .. }));
}

fn arb_totals(max: u64) -> impl Strategy<Value = Totals> {
    (0..max, 0..max, 0..max, 0..max).prop_map(|(completed, e, s, h)| Totals {
        completed,
        rq_5xx: e.min(completed),
        timed: completed,
        slow: s.min(completed),
        heartbeats: h.min(completed),
    })
}

proptest! {
    /// Missing data never rolls back: with the hard gates quiet and fewer samples than the
    /// policy needs, or a stale feed, the verdict is never a rollback.
    #[test]
    fn never_rolls_back_on_missing_data(
        canary in arb_totals(50),
        baseline in arb_totals(5_000),
        now in 1_000u64..500_000,
        stale in any::<bool>(),
        looks in 0u32..5,
    ) {
        let policy = policy();
        let nodes = [node(true)];
        let mut look_input = input(&policy, &nodes, now);
        look_input.failing_looks = looks.min(1);
        look_input.traffic = Some(TrafficInput {
            canary,
            baseline,
            baseline_kind: BaselineKind::Cohort,
            stale_nodes: if stale { vec!["n9".into()] } else { Vec::new() },
        });
        let look = decide(&look_input);
        prop_assert!(gate_of(&look).is_none(), "{:?}", look);
    }

    /// Deterministic: the same input gives the same look.
    #[test]
    fn the_same_input_gives_the_same_look(
        canary in arb_totals(2_000),
        baseline in arb_totals(2_000),
        now in 1_000u64..100_000,
    ) {
        let policy = policy();
        let nodes = [node(true)];
        let mut look_input = input(&policy, &nodes, now);
        look_input.traffic = Some(TrafficInput {
            canary,
            baseline,
            baseline_kind: BaselineKind::History,
            stale_nodes: Vec::new(),
        });
        prop_assert_eq!(decide(&look_input), decide(&look_input));
    }

    /// A NACK always wins, whatever the traffic says.
    #[test]
    fn a_nack_always_rolls_back(canary in arb_totals(2_000), baseline in arb_totals(2_000)) {
        let policy = policy();
        let nodes = [CanaryNode { nack: Some("bad".into()), ..node(false) }];
        let mut look_input = input(&policy, &nodes, 2_000);
        look_input.traffic = Some(TrafficInput {
            canary,
            baseline,
            baseline_kind: BaselineKind::Cohort,
            stale_nodes: Vec::new(),
        });
        prop_assert_eq!(gate_of(&decide(&look_input)), Some(Gate::Acceptance));
    }
}
