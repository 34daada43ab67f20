//! Requests the server refuses, each with a status that says why: a node over the size limit,
//! a node its authorizer refuses, a request over the message limit. In-process, on 127.0.0.1:0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use xds::proto::{AggregatedDiscoveryServiceClient, DiscoveryRequest, Node};
use xds::{AdsServer, NodeAuthorizer, RefusalCause, SnapshotCache, XdsEvent, type_url};

async fn server(max_node_bytes: usize) -> (String, Arc<Mutex<Vec<XdsEvent>>>) {
    server_with(max_node_bytes, None).await
}

async fn server_with(
    max_node_bytes: usize,
    authorizer: Option<NodeAuthorizer>,
) -> (String, Arc<Mutex<Vec<XdsEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let server = AdsServer::new(Arc::new(SnapshotCache::new()), move |event| {
        sink.lock().expect("events").push(event);
    });
    server.set_max_node_bytes(max_node_bytes);
    if let Some(authorizer) = authorizer {
        server.set_authorizer(authorizer);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.into_service())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), events)
}

fn node(metadata_bytes: usize) -> Node {
    let fields = BTreeMap::from([(
        "blob".to_string(),
        Value {
            kind: Some(Kind::StringValue("x".repeat(metadata_bytes))),
        },
    )]);
    Node {
        id: "edge-1".into(),
        cluster: "edge".into(),
        metadata: Some(Struct {
            fields: fields.into_iter().collect(),
        }),
        ..Node::default()
    }
}

/// Opens a stream, sends `first`, and returns the status the stream ends with.
async fn status_of(url: &str, first: DiscoveryRequest) -> tonic::Status {
    let mut client = AggregatedDiscoveryServiceClient::connect(url.to_string())
        .await
        .expect("connect")
        .max_encoding_message_size(usize::MAX);
    let (tx, rx) = mpsc::channel(1);
    tx.send(first).await.expect("queue");
    let opened = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await;
    let mut inbound = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended with OK"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn a_node_over_the_limit_is_refused_with_the_reason() {
    let (url, events) = server(4096).await;
    let first = DiscoveryRequest {
        node: Some(node(64 * 1024)),
        type_url: type_url::EXTENSION_CONFIG.into(),
        ..DiscoveryRequest::default()
    };
    let status = status_of(&url, first).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("at most 4096"),
        "{}",
        status.message()
    );
    let events = events.lock().expect("events").clone();
    assert!(
        matches!(&events[..], [XdsEvent::Refused { node, .. }] if node.id == "edge-1" && node.metadata.is_empty()),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_request_over_16_mib_ends_with_a_status_that_says_so() {
    let (url, events) = server(usize::MAX).await;
    let first = DiscoveryRequest {
        node: Some(node(17 * 1024 * 1024)),
        type_url: type_url::EXTENSION_CONFIG.into(),
        ..DiscoveryRequest::default()
    };
    let status = status_of(&url, first).await;
    assert_ne!(status.code(), tonic::Code::Ok, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
    assert!(events.lock().expect("events").is_empty());
}

#[tokio::test]
async fn a_node_the_authorizer_refuses_gets_permission_denied_and_nothing_else() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let asked = Arc::clone(&seen);
    let authorizer: NodeAuthorizer = Arc::new(move |node, certs| {
        asked
            .lock()
            .expect("asked")
            .push((node.id.clone(), certs.is_some()));
        Err(format!("node {:?} may not connect here", node.id))
    });
    let (url, events) = server_with(4096, Some(authorizer)).await;
    let first = DiscoveryRequest {
        node: Some(node(16)),
        type_url: type_url::EXTENSION_CONFIG.into(),
        ..DiscoveryRequest::default()
    };
    let status = status_of(&url, first).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), "node \"edge-1\" may not connect here");
    let asked = seen.lock().expect("asked").clone();
    assert_eq!(
        asked,
        vec![("edge-1".to_string(), false)],
        "plain TCP: no certificates"
    );
    let events = events.lock().expect("events").clone();
    assert!(
        matches!(
            &events[..],
            [XdsEvent::Refused {
                cause: RefusalCause::Unauthorized,
                ..
            }]
        ),
        "refused before it opened: {events:?}"
    );
}
