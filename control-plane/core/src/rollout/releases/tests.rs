//! The release step alone: plain data in, effects out, no runtime.

use std::collections::HashMap;

use super::*;
use crate::nodes::{NodeIdentity, Nodes};
use crate::rollout::Policy;
use crate::rollout::effects::Effects;
use crate::rollout::placement::Placement;
use crate::rollout::record::Quarantined;

fn release_of(tag: &str) -> Release {
    Release::for_tests(tag)
}

fn connected(ids: &[&str]) -> Nodes {
    let mut nodes = Nodes::new();
    for id in ids {
        let identity = NodeIdentity {
            id: (*id).into(),
            ..NodeIdentity::default()
        };
        nodes.connect(&identity, 0);
    }
    nodes
}

/// Runs `step` on a world of `nodes` under the default policy and no manifests.
fn in_world<T>(nodes: &Nodes, step: impl FnOnce(&World<'_>) -> T) -> T {
    let (policy, placement, signals) = (Policy::default(), Placement::default(), HashMap::new());
    let world = World {
        policy: &policy,
        placement: &placement,
        nodes,
        signals: &signals,
        opened_ms: Some(0),
    };
    step(&world)
}

#[test]
fn a_first_version_starts_and_asks_to_save_log_and_serve_every_proxy() {
    let nodes = connected(&["n1", "n2"]);
    let mut rollouts = Rollouts::default();
    let mut fx = Effects::default();
    let outcome = in_world(&nodes, |world| {
        release(&mut rollouts, world, "authz", release_of("a"), 10, &mut fx)
    });
    assert_eq!(outcome.expect("started"), ReleaseOutcome::Started);
    assert!(fx.save, "saved before anything else");
    let actions: Vec<&str> = fx
        .decisions
        .iter()
        .map(|(d, _)| d.action.as_str())
        .collect();
    assert_eq!(actions, ["start"]);
    assert_eq!(fx.serve.iter().collect::<Vec<_>>(), ["n1", "n2"]);

    let mut fx = Effects::default();
    let outcome = in_world(&nodes, |world| {
        release(&mut rollouts, world, "authz", release_of("b"), 20, &mut fx)
    });
    assert_eq!(outcome.expect("queued"), ReleaseOutcome::Queued);
    assert!(fx.serve.is_empty(), "a queued version reaches no proxy");
}

#[test]
fn a_quarantined_version_is_refused_with_the_one_message() {
    let mut rollouts = Rollouts::default();
    let bad = release_of("b");
    let quarantined = Quarantined {
        release: bad.clone(),
        reason: "Acceptance gate: NACKed".into(),
        at_ms: 1,
        started_ms: None,
    };
    let record = rollouts.records.entry("authz".into()).or_default();
    record.quarantine.insert(bad.version.clone(), quarantined);
    let mut fx = Effects::default();
    let refused = in_world(&Nodes::new(), |world| {
        release(&mut rollouts, world, "authz", bad, 10, &mut fx)
    });
    let err = refused.expect_err("refused");
    assert!(err.to_string().contains("is quarantined"), "{err}");
    assert!(
        err.to_string()
            .contains("meshplug retry authz b00000000000"),
        "{err}"
    );
    assert!(fx.is_empty(), "nothing to do: {fx:?}");
}
