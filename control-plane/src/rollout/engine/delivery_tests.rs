//! Proxies behind an agent: served remote modules, and a failed fetch is waited for (not a
//! NACK, never quarantined), then fails the fetch gate past the fetch deadline.

use std::time::Duration;

use meshplug_core::nodes::{AGENT_DELIVERY, DELIVERY_KEY, FETCH_FAILED_PREFIX};
use meshplug_envoy::ecds::remote_module;
use xds::NodeInfo;

use super::tests::{Harness, PLUGIN, policy, release};
use crate::rollout::decide::Gate;

fn behind_agent(id: &str) -> NodeInfo {
    let mut node = super::tests::node(id);
    node.metadata
        .insert(DELIVERY_KEY.into(), AGENT_DELIVERY.into());
    node
}

fn served_module(h: &Harness, node: &str) -> Option<meshplug_envoy::ecds::RemoteModule> {
    let snapshot = h.cache.snapshot(node);
    let resource = snapshot
        .resources(xds::type_url::EXTENSION_CONFIG)
        .and_then(|r| r.get(PLUGIN))
        .cloned()
        .expect("a filter served");
    remote_module(&resource).expect("decodes")
}

/// `local` on this host, `remote` behind an agent, with last good `a` on both.
fn fleet() -> Harness {
    let mut h = Harness::with_policy(
        crate::rollout::Policy {
            fetch_deadline: Duration::from_secs(60),
            ..policy()
        },
        &["local"],
    );
    h.engine.on_connect(&behind_agent("remote"), 0);
    h.engine
        .set_artifacts_url(Some("http://198.18.0.2:8081/".into()));
    h.engine.release(PLUGIN, release("a"), 10).expect("a");
    h.ack_all(&["local", "remote"], 20);
    h.engine
        .command(PLUGIN, crate::rollout::Command::Promote { full: true }, 20)
        .expect("a promoted before its bake ends");
    h
}

#[test]
fn a_proxy_behind_an_agent_is_served_a_remote_module_and_a_local_one_a_path() {
    let h = fleet();
    assert_eq!(served_module(&h, "local"), None, "a path on this disk");
    let remote = served_module(&h, "remote").expect("a remote module");
    let sha = release("a").sha256;
    assert_eq!(remote.sha256, sha);
    assert_eq!(
        remote.uri,
        format!("http://198.18.0.2:8081/artifacts/{sha}.wasm")
    );
    assert_eq!(
        h.served("remote"),
        h.served("local"),
        "the same version label"
    );
}

#[test]
fn a_failed_fetch_waits_then_fails_the_fetch_gate_without_quarantine() {
    let mut h = fleet();
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = super::tests::canary_of(&h);
    let reason = "GET http://198.18.0.2:8081/artifacts/b.wasm: connection refused";
    let error = format!("{FETCH_FAILED_PREFIX}{reason}");
    if canary == "remote" {
        h.answer("remote", 1_100, Some(&error));
    } else {
        // The canary is the local proxy: let it pass its step, so the agent's proxy gets b.
        h.ack("local", 1_100);
        for t in (1_500..8_000).step_by(500) {
            h.flush("local", 30, 0, t);
            h.flush("remote", 30, 0, t);
            h.engine.tick(t);
        }
        assert_eq!(
            h.served("remote"),
            Some(release("b").version),
            "{:?}",
            h.record()
        );
        h.answer("remote", 8_100, Some(&error));
    }
    let node = h.engine.nodes().get("remote").expect("node").clone();
    assert!(node.last_nack(PLUGIN).is_none(), "not a NACK");
    assert_eq!(
        node.fetch_failure(PLUGIN).map(|f| f.error.as_str()),
        Some(reason)
    );
    // Past the ACK deadline (10 s) it still waits for the agent.
    h.engine.tick(30_000);
    assert!(
        h.record().rollout.is_some(),
        "still rolling out: {:?}",
        h.record()
    );
    // Past the fetch deadline the gate fails, and b is not quarantined.
    h.engine.tick(120_000);
    let record = h.record();
    assert!(record.rollout.is_none(), "{record:?}");
    assert!(record.quarantine.is_empty(), "not quarantined: {record:?}");
    let log = h.engine.decisions().expect("log");
    let rollback = log
        .iter()
        .find(|d| d.action == "rollback")
        .expect("rollback");
    assert_eq!(rollback.gate, Some(Gate::Fetch));
    assert!(rollback.reason.contains(reason), "{}", rollback.reason);
    assert_eq!(h.served("remote"), Some(release("a").version));
}
