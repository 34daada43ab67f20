use xds::NodeInfo;

use super::*;

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text
}

#[test]
fn pushes_acks_nacks_latency_and_connected_nodes_are_counted() {
    let mut registry = Registry::default();
    let metrics = XdsMetrics::register(&mut registry);
    let node = NodeInfo::default();
    let sent = |nonce: &str, type_url: &str| XdsEvent::Sent {
        stream: 1,
        node: node.clone(),
        type_url: type_url.into(),
        version: "v".into(),
        nonce: nonce.into(),
        resources: vec![],
    };
    metrics.observe(&XdsEvent::StreamOpened {
        stream: 1,
        node: node.clone(),
    });
    // The gauge counts proxies as the node model does: one on two streams is one.
    let mut nodes = meshplug_core::nodes::Nodes::new();
    let identity = meshplug_core::nodes::NodeIdentity::default();
    nodes.connect(&identity, 0);
    nodes.connect(&identity, 0);
    metrics.set_connected(nodes.connected_count());
    metrics.observe(&sent("1", type_url::EXTENSION_CONFIG));
    metrics.observe(&sent("2", type_url::LISTENER));
    metrics.observe(&XdsEvent::Ack {
        stream: 1,
        node: node.clone(),
        type_url: type_url::EXTENSION_CONFIG.into(),
        version: "v".into(),
        nonce: "1".into(),
        resources: vec![],
    });
    metrics.observe(&XdsEvent::Nack {
        stream: 1,
        node: node.clone(),
        type_url: type_url::LISTENER.into(),
        version: "v".into(),
        nonce: "2".into(),
        resources: vec![],
        error: "no".into(),
    });
    let text = encode(&registry);
    for line in [
        "meshplug_xds_pushes_total{type=\"ecds\"} 1",
        "meshplug_xds_pushes_total{type=\"lds\"} 1",
        "meshplug_xds_acks_total{type=\"ecds\"} 1",
        "meshplug_xds_nacks_total{type=\"lds\"} 1",
        "meshplug_connected_nodes 1",
        "meshplug_push_latency_seconds_count 2",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    metrics.observe(&XdsEvent::StreamClosed { stream: 1, node });
    nodes.disconnect("", 1);
    metrics.set_connected(nodes.connected_count());
    assert!(
        encode(&registry).contains("meshplug_connected_nodes 1"),
        "one stream is left"
    );
    nodes.disconnect("", 2);
    metrics.set_connected(nodes.connected_count());
    assert!(encode(&registry).contains("meshplug_connected_nodes 0"));
}
