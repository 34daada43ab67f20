use super::*;

fn identity() -> NodeIdentity {
    NodeIdentity {
        id: "envoy-1".into(),
        cluster: "edge".into(),
        envoy_version: Some("1.40.0".into()),
        ..NodeIdentity::default()
    }
}

fn authz(version: &str) -> Vec<FilterVersion> {
    vec![FilterVersion {
        name: "authz".into(),
        version: version.into(),
    }]
}

#[test]
fn tracks_sent_acked_and_nacked_versions() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 10);
    nodes.apply("envoy-1", &NodeEvent::Sent(authz("good")), 11);
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("good")), 12);
    nodes.apply("envoy-1", &NodeEvent::Sent(authz("bad")), 13);
    nodes.apply(
        "envoy-1",
        &NodeEvent::Nacked(authz("bad"), "Failed to parse".into()),
        14,
    );
    let node = nodes.get("envoy-1").expect("known node");
    assert!(node.connected);
    assert_eq!(node.envoy_version.as_deref(), Some("1.40.0"));
    let authz = &node.filters["authz"];
    assert_eq!(authz.sent.as_deref(), Some("bad"));
    assert_eq!(
        authz.acked.as_deref(),
        Some("good"),
        "a NACK keeps the old version"
    );
    assert_eq!(authz.sends, 2);
    let nack = authz.last_nack.as_ref().expect("nack recorded");
    assert_eq!(
        (nack.version.as_str(), nack.error.as_str(), nack.at_unix_ms),
        ("bad", "Failed to parse", 14)
    );
}

#[test]
fn a_nack_listing_the_acked_version_is_not_a_nack_of_it() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("good")), 2);
    nodes.apply(
        "envoy-1",
        &NodeEvent::Nacked(authz("good"), "other".into()),
        3,
    );
    assert_eq!(
        nodes.get("envoy-1").and_then(|n| n.last_nack("authz")),
        None
    );
}

#[test]
fn disconnect_is_seen_only_when_the_last_stream_closes() {
    let mut nodes = Nodes::new();
    assert!(
        !nodes.connect(&identity(), 1),
        "a first connect is no return"
    );
    nodes.connect(&identity(), 2);
    nodes.disconnect("envoy-1", 3);
    assert!(nodes.get("envoy-1").expect("known").connected);
    assert_eq!(nodes.connected_count(), 1, "nodes are counted, not streams");
    nodes.disconnect("envoy-1", 4);
    let node = nodes.get("envoy-1").expect("known");
    assert!(!node.connected);
    assert_eq!(node.disconnected_at_ms(), Some(4));
    assert!(nodes.connect(&identity(), 5), "it came back");
}

#[test]
fn applied_needs_a_clean_reload_after_the_send() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    nodes.apply("envoy-1", &NodeEvent::Sent(authz("v1")), 10);
    assert!(
        !nodes.reloaded("envoy-1", "authz", 9),
        "a reload before the send"
    );
    let applied = |nodes: &Nodes| {
        nodes
            .get("envoy-1")
            .and_then(|n| n.filters["authz"].applied.clone())
    };
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("v1")), 11);
    assert_eq!(applied(&nodes), None, "the reload came before the send");
    assert!(nodes.reloaded("envoy-1", "authz", 12));
    assert_eq!(applied(&nodes).as_deref(), Some("v1"));
    nodes.apply("envoy-1", &NodeEvent::Sent(authz("v2")), 13);
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("v2")), 14);
    assert_eq!(
        applied(&nodes).as_deref(),
        Some("v1"),
        "ACKed, not yet reloaded"
    );
    assert!(nodes.reloaded("envoy-1", "authz", 15));
    assert_eq!(applied(&nodes).as_deref(), Some("v2"));
    assert!(!nodes.reloaded("envoy-1", "ratelimit", 16), "never sent");
    assert!(
        !nodes
            .get("envoy-1")
            .expect("known")
            .filters
            .contains_key("ratelimit")
    );
}

#[test]
fn desired_versions_come_and_go() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    let want = BTreeMap::from([("authz".to_string(), "v1".to_string())]);
    nodes.set_desired("envoy-1", &want);
    assert_eq!(
        nodes.get("envoy-1").expect("known").filters["authz"]
            .desired
            .as_deref(),
        Some("v1")
    );
    nodes.set_desired("envoy-1", &BTreeMap::new());
    assert_eq!(
        nodes.get("envoy-1").expect("known").filters["authz"].desired,
        None
    );
}

#[test]
fn restored_nodes_are_disconnected_and_not_seen_yet() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("v1")), 2);
    let text = serde_json::to_string(nodes.saved()).expect("saved");
    let restored = Nodes::restore(serde_json::from_str(&text).expect("loads"));
    let node = restored.get("envoy-1").expect("kept");
    assert!(!node.connected);
    assert!(!node.seen_this_process());
    assert_eq!(node.acked("authz"), Some("v1"));
    assert_eq!(node.cluster, "edge");
}

#[test]
fn a_fetch_failure_is_not_a_nack_and_clears_once_the_version_is_acked() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("v1")), 2);
    nodes.apply("envoy-1", &NodeEvent::Sent(authz("v2")), 3);
    let reason = "GET http://198.18.0.2/artifacts/ab.wasm: connection refused";
    nodes.apply(
        "envoy-1",
        &NodeEvent::FetchFailed(authz("v2"), reason.into()),
        4,
    );
    let node = nodes.get("envoy-1").expect("node");
    assert_eq!(node.last_nack("authz"), None, "not a NACK");
    let failure = node.fetch_failure("authz").expect("fetch failure");
    assert_eq!(
        (failure.version.as_str(), failure.error.as_str()),
        ("v2", reason)
    );
    assert_eq!(node.acked("authz"), Some("v1"), "keeps what it runs");
    nodes.apply("envoy-1", &NodeEvent::Acked(authz("v2")), 5);
    let node = nodes.get("envoy-1").expect("node");
    assert_eq!(node.fetch_failure("authz"), None);
    assert_eq!(node.acked("authz"), Some("v2"));
}

#[test]
fn delivery_follows_the_agent_metadata() {
    let mut nodes = Nodes::new();
    nodes.connect(&identity(), 1);
    assert_eq!(
        nodes.get("envoy-1").map(Node::delivery),
        Some(Delivery::Local)
    );
    let mut behind_agent = identity();
    behind_agent
        .metadata
        .insert(DELIVERY_KEY.into(), AGENT_DELIVERY.into());
    nodes.connect(&behind_agent, 2);
    assert_eq!(
        nodes.get("envoy-1").map(Node::delivery),
        Some(Delivery::Agent)
    );
}

/// `replica`'s published model: `envoy-1` connected there, having ACKed `version`.
fn published(connected: bool, version: &str) -> BTreeMap<String, Node> {
    let mut there = Nodes::new();
    there.connect(&identity(), 1);
    there.apply("envoy-1", &NodeEvent::Acked(authz(version)), 2);
    if !connected {
        there.disconnect("envoy-1", 3);
    }
    there.saved().clone()
}

#[test]
fn nodes_of_other_replicas_are_read_where_they_are_connected() {
    let mut nodes = Nodes::new();
    let joined = nodes.set_remote("r2", published(true, "v2"));
    assert_eq!(joined, vec!["envoy-1".to_string()]);
    assert_eq!(nodes.connected().collect::<Vec<_>>(), ["envoy-1"]);
    assert_eq!(
        nodes.connected_count(),
        0,
        "only streams to this replica count"
    );
    let node = nodes.get("envoy-1").expect("remote node");
    assert_eq!(node.acked("authz"), Some("v2"));
    assert!(
        node.seen_this_process(),
        "a connected remote node is live, not unseen"
    );
    // Published again: not a new join.
    assert!(nodes.set_remote("r2", published(true, "v2")).is_empty());
    // It moves here: this replica's record wins, and it is listed once.
    nodes.connect(&identity(), 5);
    assert_eq!(nodes.connected().count(), 1);
    assert_eq!(nodes.get("envoy-1").and_then(|n| n.acked("authz")), None);
}

#[test]
fn a_replica_that_is_gone_holds_no_node() {
    let mut nodes = Nodes::new();
    nodes.set_remote("r2", published(true, "v2"));
    nodes.set_remote("r3", published(false, "v1"));
    assert_eq!(nodes.connected().count(), 1);
    nodes.set_remote("r2", BTreeMap::new());
    assert_eq!(nodes.connected().count(), 0);
    assert!(nodes.remote().get("r2").is_none());
    // The last record known remains readable (r3's, disconnected).
    assert_eq!(
        nodes.get("envoy-1").and_then(|n| n.acked("authz")),
        Some("v1")
    );
}
