//! Property test of request handling: streams of arbitrary DiscoveryRequests (SotW and Delta:
//! any type URL, names, versions, nonces, NACK details, a missing or empty node) against the
//! server in this process. Each stream ends with responses or a status, never a panic, and a
//! well-behaved client is served its resource after every hostile stream. 96 cases.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use xds::proto::{AggregatedDiscoveryServiceClient, Any, DiscoveryRequest, Node, RpcStatus};
use xds::{AdsServer, SnapshotCache, type_url};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._/-]{1,24}",
        Just(type_url::EXTENSION_CONFIG.to_string()),
        Just(type_url::LISTENER.to_string()),
        Just("authz".to_string()),
        any::<String>(),
    ]
}

#[derive(Debug, Clone)]
struct Req {
    node: Option<(String, String)>,
    type_url: String,
    names: Vec<String>,
    version: String,
    nonce: String,
    nack: Option<String>,
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::option::of((text(), text())),
        text(),
        prop::collection::vec(text(), 0..4),
        text(),
        text(),
        prop::option::of(text()),
    )
        .prop_map(|(node, type_url, names, version, nonce, nack)| Req {
            node,
            type_url,
            names,
            version,
            nonce,
            nack,
        })
}

fn node(ids: &Option<(String, String)>) -> Option<Node> {
    ids.as_ref().map(|(id, cluster)| Node {
        id: id.clone(),
        cluster: cluster.clone(),
        ..Node::default()
    })
}

fn sotw(r: &Req) -> DiscoveryRequest {
    DiscoveryRequest {
        node: node(&r.node),
        type_url: r.type_url.clone(),
        resource_names: r.names.clone(),
        version_info: r.version.clone(),
        response_nonce: r.nonce.clone(),
        error_detail: r.nack.as_ref().map(|m| RpcStatus {
            code: 3,
            message: m.clone(),
            details: vec![],
        }),
        ..DiscoveryRequest::default()
    }
}

fn delta(r: &Req) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: node(&r.node),
        type_url: r.type_url.clone(),
        resource_names_subscribe: r.names.clone(),
        resource_names_unsubscribe: r.names.iter().rev().take(1).cloned().collect(),
        response_nonce: r.nonce.clone(),
        error_detail: r.nack.as_ref().map(|m| RpcStatus {
            code: 3,
            message: m.clone(),
            details: vec![],
        }),
        ..DeltaDiscoveryRequest::default()
    }
}

async fn start() -> String {
    let cache = Arc::new(SnapshotCache::new());
    cache.update("good", |snap| {
        snap.set_resource(
            type_url::EXTENSION_CONFIG,
            "authz",
            Any {
                type_url: type_url::EXTENSION_CONFIG.into(),
                value: b"v1".to_vec(),
            },
        )
    });
    let server = AdsServer::new(cache, |_| {});
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.into_service())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// Sends `requests` on one stream of each flavour and reads until the stream ends or goes
/// quiet.
async fn hostile(url: &str, requests: &[Req]) {
    let mut client = AggregatedDiscoveryServiceClient::connect(url.to_string())
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(requests.len().max(1));
    for r in requests {
        tx.send(sotw(r)).await.expect("queue");
    }
    drop(tx);
    if let Ok(response) = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        let mut inbound = response.into_inner();
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(200), inbound.message()).await
        {}
    }
    let (tx, rx) = mpsc::channel(requests.len().max(1));
    for r in requests {
        tx.send(delta(r)).await.expect("queue");
    }
    drop(tx);
    if let Ok(response) = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        let mut inbound = response.into_inner();
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(200), inbound.message()).await
        {}
    }
}

/// A well-behaved node of group `good` subscribes and is served `authz`.
async fn well_behaved(url: &str) {
    let mut client = AggregatedDiscoveryServiceClient::connect(url.to_string())
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(1);
    let first = Req {
        node: Some(("good".into(), "good".into())),
        type_url: type_url::EXTENSION_CONFIG.into(),
        names: vec!["authz".into()],
        version: String::new(),
        nonce: String::new(),
        nack: None,
    };
    tx.send(sotw(&first)).await.expect("queue");
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let response = tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .expect("served within 5 s")
        .expect("ok")
        .expect("open");
    assert_eq!(response.resources.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_request_streams_never_break_the_server() {
    let url = start().await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&prop::collection::vec(request(), 1..6), |requests| {
            handle.block_on(async {
                hostile(&url, &requests).await;
                well_behaved(&url).await;
            });
            Ok(())
        })
    });
    result.expect("every case");
}
