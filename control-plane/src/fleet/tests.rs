use xds::NodeInfo;

use super::*;

fn node() -> NodeInfo {
    NodeInfo {
        id: "envoy-1".into(),
        cluster: "edge".into(),
        user_agent_version: Some("1.40.0".into()),
        ..Default::default()
    }
}

fn rv(name: &str, version: &str) -> Vec<ResourceVersion> {
    vec![ResourceVersion {
        name: name.into(),
        version: version.into(),
    }]
}

fn sent(version: &str) -> XdsEvent {
    XdsEvent::Sent {
        stream: 1,
        node: node(),
        type_url: type_url::EXTENSION_CONFIG.into(),
        version: "x".into(),
        nonce: "1".into(),
        resources: rv("authz", version),
    }
}

#[test]
fn tracks_sent_acked_and_nacked_versions() {
    let mut fleet = Fleet::new();
    fleet.apply(
        &XdsEvent::StreamOpened {
            stream: 1,
            node: node(),
        },
        10,
    );
    fleet.apply(&sent("good"), 11);
    fleet.apply(
        &XdsEvent::Ack {
            stream: 1,
            node: node(),
            type_url: type_url::EXTENSION_CONFIG.into(),
            version: "x".into(),
            nonce: "1".into(),
            resources: rv("authz", "good"),
        },
        12,
    );
    fleet.apply(&sent("bad"), 13);
    fleet.apply(
        &XdsEvent::Nack {
            stream: 1,
            node: node(),
            type_url: type_url::EXTENSION_CONFIG.into(),
            version: "y".into(),
            nonce: "2".into(),
            resources: rv("authz", "bad"),
            error: "Failed to parse".into(),
        },
        14,
    );
    let status = fleet.node("envoy-1").expect("known node");
    assert!(status.connected);
    assert_eq!(status.envoy_version.as_deref(), Some("1.40.0"));
    let authz = &status.filters["authz"];
    assert_eq!(authz.sent.as_deref(), Some("bad"));
    assert_eq!(
        authz.acked.as_deref(),
        Some("good"),
        "a NACK keeps the old version"
    );
    assert_eq!(authz.sends, 2);
    let nack = authz.last_nack.as_ref().expect("nack recorded");
    assert_eq!(
        (nack.version.as_str(), nack.error.as_str()),
        ("bad", "Failed to parse")
    );
}

#[test]
fn disconnect_is_seen_only_when_the_last_stream_closes() {
    let mut fleet = Fleet::new();
    fleet.apply(
        &XdsEvent::StreamOpened {
            stream: 1,
            node: node(),
        },
        1,
    );
    fleet.apply(
        &XdsEvent::StreamOpened {
            stream: 2,
            node: node(),
        },
        2,
    );
    fleet.apply(
        &XdsEvent::StreamClosed {
            stream: 1,
            node: node(),
        },
        3,
    );
    assert!(fleet.node("envoy-1").expect("known").connected);
    fleet.apply(
        &XdsEvent::StreamClosed {
            stream: 2,
            node: node(),
        },
        4,
    );
    assert!(!fleet.node("envoy-1").expect("known").connected);
}

#[test]
fn other_types_do_not_touch_filters() {
    let mut fleet = Fleet::new();
    fleet.apply(
        &XdsEvent::Sent {
            stream: 1,
            node: node(),
            type_url: type_url::CLUSTER.into(),
            version: "v".into(),
            nonce: "1".into(),
            resources: rv("upstream", "v"),
        },
        1,
    );
    assert!(fleet.node("envoy-1").expect("known").filters.is_empty());
}
