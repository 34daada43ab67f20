use super::super::{FilterVersion, NodeEvent, NodeIdentity, Nodes};

fn running(version: &str) -> Nodes {
    let mut nodes = Nodes::new();
    let identity = NodeIdentity {
        id: "envoy-1".into(),
        ..NodeIdentity::default()
    };
    nodes.connect(&identity, 1);
    let filters = vec![FilterVersion {
        name: "authz".into(),
        version: version.into(),
    }];
    nodes.apply("envoy-1", &NodeEvent::Sent(filters.clone()), 2);
    nodes.apply("envoy-1", &NodeEvent::Acked(filters), 3);
    nodes.reloaded("envoy-1", "authz", 4);
    nodes
}

fn authz(nodes: &Nodes) -> &super::FilterOnNode {
    &nodes.get("envoy-1").expect("node").filters["authz"]
}

#[test]
fn applied_means_loaded_and_not_failing() {
    let mut nodes = running("v1");
    assert!(authz(&nodes).healthy());
    assert!(nodes.set_failing("envoy-1", "authz", "v1", Some("5xx ratio up"), 10));
    let failing = authz(&nodes).failing.clone().expect("failing");
    assert_eq!(
        (failing.version.as_str(), failing.since_unix_ms),
        ("v1", 10)
    );
    assert!(!authz(&nodes).healthy());
    // The same verdict again changes nothing, and keeps when it began.
    assert!(!nodes.set_failing("envoy-1", "authz", "v1", Some("5xx ratio up"), 20));
    assert!(nodes.set_failing("envoy-1", "authz", "v1", Some("worse"), 30));
    assert_eq!(
        authz(&nodes).failing.as_ref().map(|f| f.since_unix_ms),
        Some(10)
    );
    // A passing look clears it.
    assert!(nodes.set_failing("envoy-1", "authz", "v1", None, 40));
    assert!(authz(&nodes).healthy());
}

#[test]
fn a_verdict_is_about_the_version_the_node_runs() {
    let mut nodes = running("v1");
    assert!(
        !nodes.set_failing("envoy-1", "authz", "v2", Some("late look"), 10),
        "a look at a version the node does not run is ignored"
    );
    assert!(!nodes.set_failing("envoy-9", "authz", "v1", Some("unknown node"), 10));
    nodes.set_failing("envoy-1", "authz", "v1", Some("5xx"), 10);
    let v2 = vec![FilterVersion {
        name: "authz".into(),
        version: "v2".into(),
    }];
    nodes.apply("envoy-1", &NodeEvent::Sent(v2), 11);
    assert_eq!(
        authz(&nodes).failing,
        None,
        "sending another version forgets the verdict"
    );
}
