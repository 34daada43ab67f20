//! In-process tests: a tonic ADS client against the server on 127.0.0.1:0.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Streaming;
use xds::proto::{
    AggregatedDiscoveryServiceClient, Any, DiscoveryRequest, DiscoveryResponse, Node, RpcStatus,
};
use xds::{AdsServer, SnapshotCache, XdsEvent, type_url};

const ECDS: &str = type_url::EXTENSION_CONFIG;

struct Harness {
    addr: std::net::SocketAddr,
    cache: Arc<SnapshotCache>,
    events: Arc<Mutex<Vec<XdsEvent>>>,
}

impl Harness {
    async fn start() -> Self {
        let cache = Arc::new(SnapshotCache::new());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = Arc::clone(&events);
        let server = AdsServer::with_grouper(
            Arc::clone(&cache),
            move |event| sink_events.lock().expect("events lock").push(event),
            Arc::new(|node: &xds::NodeInfo| node.cluster.clone()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(server.into_service())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self {
            addr,
            cache,
            events,
        }
    }

    fn publish(&self, group: &str, name: &str, value: &[u8]) {
        self.cache.update(group, |snap| {
            snap.set_resource(
                ECDS,
                name,
                Any {
                    type_url: ECDS.into(),
                    value: value.to_vec(),
                },
            )
        });
    }

    fn events(&self) -> Vec<XdsEvent> {
        self.events.lock().expect("events lock").clone()
    }

    async fn connect(&self, node_id: &str, cluster: &str) -> Client {
        let mut grpc = AggregatedDiscoveryServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let node = Node {
            id: node_id.into(),
            cluster: cluster.into(),
            ..Default::default()
        };
        let inbound = grpc
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        Client {
            tx,
            inbound,
            node: Some(node),
        }
    }
}

struct Client {
    tx: mpsc::Sender<DiscoveryRequest>,
    inbound: Streaming<DiscoveryResponse>,
    node: Option<Node>,
}

impl Client {
    async fn send(&mut self, names: &[&str], version: &str, nonce: &str, error: Option<&str>) {
        let request = DiscoveryRequest {
            node: self.node.take(),
            type_url: ECDS.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            error_detail: error.map(|message| RpcStatus {
                code: 3,
                message: message.into(),
                details: vec![],
            }),
            ..Default::default()
        };
        self.tx.send(request).await.expect("send request");
    }

    async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.inbound.message())
            .await
            .expect("a response within 5 s")
            .expect("stream ok")
            .expect("stream open")
    }

    /// Asserts nothing arrives for a while: the server must stay quiet after an ACK or NACK.
    async fn expect_silence(&mut self) {
        let waited = tokio::time::timeout(Duration::from_millis(300), self.inbound.message()).await;
        assert!(waited.is_err(), "unexpected response: {waited:?}");
    }
}

async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn subscribe_ack_and_push_a_new_version() {
    let h = Harness::start().await;
    h.publish("fleet", "authz", b"v1");
    let mut client = h.connect("envoy-1", "fleet").await;

    client.send(&["authz"], "", "", None).await;
    let first = client.recv().await;
    assert_eq!(first.type_url, ECDS);
    assert_eq!(first.resources.len(), 1);
    assert!(!first.nonce.is_empty());
    client
        .send(&["authz"], &first.version_info, &first.nonce, None)
        .await;
    client.expect_silence().await;

    h.publish("fleet", "authz", b"v2");
    let second = client.recv().await;
    assert_ne!(second.version_info, first.version_info);
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(second.resources[0].value, b"v2");

    eventually("the ACK is reported", || {
        h.events().iter().any(|e| {
            matches!(e, XdsEvent::Ack { version, node, .. }
                if *version == first.version_info && node.id == "envoy-1")
        })
    })
    .await;
}

#[tokio::test]
async fn nack_is_reported_with_its_detail_and_not_resent() {
    let h = Harness::start().await;
    h.publish("fleet", "authz", b"broken");
    let mut client = h.connect("envoy-1", "fleet").await;
    client.send(&["authz"], "", "", None).await;
    let bad = client.recv().await;

    client
        .send(
            &["authz"],
            "",
            &bad.nonce,
            Some("Failed to parse corrupted Wasm module"),
        )
        .await;
    client.expect_silence().await;

    h.publish("fleet", "authz", b"broken"); // identical republish: still nothing
    client.expect_silence().await;

    h.publish("fleet", "authz", b"fixed");
    let fixed = client.recv().await;
    assert_eq!(fixed.resources[0].value, b"fixed");

    let nacks: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            XdsEvent::Nack { version, error, .. } => Some((version, error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        nacks,
        vec![(
            bad.version_info.clone(),
            "Failed to parse corrupted Wasm module".to_string()
        )]
    );
    let sent = h
        .events()
        .iter()
        .filter(|e| matches!(e, XdsEvent::Sent { .. }))
        .count();
    assert_eq!(sent, 2, "one bad push and one fixed push, no resend loop");
}

#[tokio::test]
async fn reconnect_gets_current_state_on_a_new_stream() {
    let h = Harness::start().await;
    h.publish("fleet", "authz", b"v1");
    let mut client = h.connect("envoy-1", "fleet").await;
    client.send(&["authz"], "", "", None).await;
    let first = client.recv().await;
    client
        .send(&["authz"], &first.version_info, &first.nonce, None)
        .await;
    drop(client);
    eventually("the stream close is reported", || {
        h.events()
            .iter()
            .any(|e| matches!(e, XdsEvent::StreamClosed { .. }))
    })
    .await;

    h.publish("fleet", "authz", b"v2");
    let mut again = h.connect("envoy-1", "fleet").await;
    again.send(&["authz"], &first.version_info, "", None).await;
    let current = again.recv().await;
    assert_eq!(current.resources[0].value, b"v2");
    assert_ne!(
        current.nonce, first.nonce,
        "nonces are not reused across streams"
    );
}

#[tokio::test]
async fn stale_nonce_is_ignored() {
    let h = Harness::start().await;
    h.publish("fleet", "authz", b"v1");
    let mut client = h.connect("envoy-1", "fleet").await;
    client.send(&["authz"], "", "", None).await;
    let first = client.recv().await;
    h.publish("fleet", "authz", b"v2");
    let second = client.recv().await;

    // A NACK of the superseded response must not count against the current one.
    client
        .send(&["authz"], "", &first.nonce, Some("late complaint"))
        .await;
    client
        .send(&["authz"], &second.version_info, &second.nonce, None)
        .await;
    eventually("the current response is ACKed", || {
        h.events()
            .iter()
            .any(|e| matches!(e, XdsEvent::Ack { nonce, .. } if *nonce == second.nonce))
    })
    .await;
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, XdsEvent::Nack { .. }))
    );
}

#[tokio::test]
async fn groups_receive_their_own_snapshots() {
    let h = Harness::start().await;
    h.publish("canary", "authz", b"new");
    h.publish("stable", "authz", b"old");
    let mut canary = h.connect("envoy-c", "canary").await;
    let mut stable = h.connect("envoy-s", "stable").await;
    canary.send(&["authz"], "", "", None).await;
    stable.send(&["authz"], "", "", None).await;
    assert_eq!(canary.recv().await.resources[0].value, b"new");
    assert_eq!(stable.recv().await.resources[0].value, b"old");

    h.publish("canary", "authz", b"newer");
    assert_eq!(canary.recv().await.resources[0].value, b"newer");
    stable.expect_silence().await;
}

#[tokio::test]
async fn first_request_without_node_is_refused() {
    let h = Harness::start().await;
    let mut client = h.connect("envoy-1", "fleet").await;
    client.node = None;
    client.send(&["authz"], "", "", None).await;
    let status = tokio::time::timeout(Duration::from_secs(5), client.inbound.message())
        .await
        .expect("an answer")
        .expect_err("an error status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("node"));
}

#[tokio::test]
async fn a_slow_reader_does_not_hold_up_others() {
    let h = Harness::start().await;
    let big = |i: u32| format!("{i:04}{}", "x".repeat(64 * 1024)).into_bytes();
    h.publish("fleet", "authz", &big(0));
    // This client subscribes and then never reads: its flow-control window fills up.
    let mut stuck = h.connect("stuck", "fleet").await;
    stuck.send(&["authz"], "", "", None).await;
    let mut live = h.connect("live", "fleet").await;
    live.send(&["authz"], "", "", None).await;
    live.recv().await;
    const PUSHES: u32 = 60;
    for i in 1..=PUSHES {
        h.publish("fleet", "authz", &big(i));
        let got = live.recv().await;
        assert_eq!(&got.resources[0].value[..4], format!("{i:04}").as_bytes());
    }
    let handed_to = |id: &str| {
        h.events()
            .iter()
            .filter(|e| matches!(e, XdsEvent::Sent { node, .. } if node.id == id))
            .count()
    };
    assert_eq!(handed_to("live"), PUSHES as usize + 1);
    assert!(
        handed_to("stuck") < PUSHES as usize + 1,
        "the stuck stream really stalled, yet the live one got every push"
    );
}

/// Delta ADS over the same server and snapshots: the first answer carries the resource, a
/// change carries only the change, and the ACK is reported.
#[tokio::test]
async fn delta_stream_sends_changes_and_reports_acks() {
    use envoy_types::pb::envoy::service::discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse,
    };
    let harness = Harness::start().await;
    harness.publish("delta", "authz", b"v1");
    harness.publish("delta", "ratelimit", b"r1");
    let mut grpc = AggregatedDiscoveryServiceClient::connect(format!("http://{}", harness.addr))
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(16);
    let mut inbound: Streaming<DeltaDiscoveryResponse> = grpc
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("open delta stream")
        .into_inner();
    let node = Node {
        id: "d-1".into(),
        cluster: "delta".into(),
        ..Default::default()
    };
    tx.send(DeltaDiscoveryRequest {
        node: Some(node),
        type_url: ECDS.into(),
        resource_names_subscribe: vec!["authz".into(), "ratelimit".into()],
        ..Default::default()
    })
    .await
    .expect("send");
    let first = next_delta(&mut inbound).await;
    let names: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["authz", "ratelimit"]);
    tx.send(DeltaDiscoveryRequest {
        type_url: ECDS.into(),
        response_nonce: first.nonce.clone(),
        ..Default::default()
    })
    .await
    .expect("ack");
    harness.publish("delta", "authz", b"v2");
    let second = next_delta(&mut inbound).await;
    let names: Vec<&str> = second.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["authz"], "only the change");
    let acked = harness
        .events()
        .iter()
        .any(|e| matches!(e, XdsEvent::Ack { nonce, .. } if *nonce == first.nonce));
    assert!(acked, "{:?}", harness.events());
}

async fn next_delta(
    inbound: &mut Streaming<envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse>,
) -> envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse {
    tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .expect("answer in time")
        .expect("stream ok")
        .expect("a response")
}
