//! The ADS and MetricsService gRPC server: one handler of stream events (the engine's node
//! model takes each), the grouper that decides a proxy's versions before it is served,
//! idle connections closed, TLS when configured (with a client CA, each stream's node bound to
//! its certificate), and a graceful stop.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use xds::{AdsServer, NodeInfo, SnapshotCache, XdsEvent};

use super::Guards;
use crate::idle::IdleTimeout;
use crate::ingest::unix_ms;
use crate::metrics_sink::MetricsSink;
use crate::rollout::Engine;
use crate::tls::{self, ServerTls, identity};
use crate::xds_metrics::XdsMetrics;

/// Serves ADS and the MetricsService on `listener` until `stop`, over `tls` when given.
pub(super) async fn serve_xds(
    (listener, tls): (TcpListener, Option<ServerTls>),
    cache: Arc<SnapshotCache>,
    engine: Arc<Mutex<Engine>>,
    xds_metrics: Arc<XdsMetrics>,
    guards: Guards,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let refusals = xds_metrics.refusals();
    let bind_identity = tls.as_ref().is_some_and(ServerTls::requires_client_cert);
    let server = ads_server(cache, Arc::clone(&engine), xds_metrics, guards);
    let mut metrics = MetricsSink::new(engine, stop.clone());
    if bind_identity {
        server.set_authorizer(Arc::new(|node: &NodeInfo, certs: Option<&[_]>| {
            identity::authorize(&node.id, certs)
        }));
        metrics = metrics.binding_identity(refusals.clone().unwrap_or_default());
    }
    let closer = server.clone();
    let idle = guards.xds_idle_timeout;
    let counted = refusals.clone();
    let wrap = move |stream| {
        let stream = IdleTimeout::new(stream, idle);
        match &counted {
            Some(refusals) => stream.counted(Arc::clone(refusals)),
            None => stream,
        }
    };
    // On stop: no new connections; each ADS stream finishes the response in hand and ends;
    // metrics streams end; then the server returns.
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(idle / 3))
        .http2_keepalive_timeout(Some(idle / 3))
        .add_service(server.into_service())
        .add_service(metrics.into_service());
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        closer.close();
    };
    let result = match tls {
        None => {
            let incoming = TcpListenerStream::new(listener).map(move |a| a.map(&wrap));
            router.serve_with_incoming_shutdown(incoming, stopped).await
        }
        Some(tls) => {
            let incoming = tls::incoming_streams(listener, tls, wrap, refusals);
            router.serve_with_incoming_shutdown(incoming, stopped).await
        }
    };
    if let Err(err) = result {
        tracing::error!(error = %err, "xDS server failed");
    }
}

/// The ADS server over `cache`, whose one handler of stream events is the engine's node
/// model, and whose grouper asks the engine which versions a proxy gets before it is served.
fn ads_server(
    cache: Arc<SnapshotCache>,
    engine: Arc<Mutex<Engine>>,
    xds_metrics: Arc<XdsMetrics>,
    guards: Guards,
) -> AdsServer {
    let events = Arc::clone(&engine);
    let sink = move |event: XdsEvent| {
        log_event(&event);
        xds_metrics.observe(&event);
        let mut engine = events.lock().unwrap_or_else(PoisonError::into_inner);
        engine.on_event(&event, unix_ms());
        xds_metrics.set_connected(engine.nodes().connected_count());
    };
    let grouper = Arc::new(move |node: &NodeInfo| {
        engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_connect(node, unix_ms())
    });
    let server = AdsServer::with_grouper(cache, sink, grouper);
    server.set_max_node_bytes(guards.max_node_bytes);
    server
}

fn log_event(event: &XdsEvent) {
    match event {
        XdsEvent::StreamOpened { node, stream } => {
            tracing::info!(node = %node.id, cluster = %node.cluster, stream, "node connected");
        }
        XdsEvent::StreamClosed { node, stream } => {
            tracing::info!(node = %node.id, stream, "node disconnected");
        }
        XdsEvent::Sent {
            node,
            type_url,
            resources,
            nonce,
            ..
        } => {
            tracing::info!(node = %node.id, %type_url, ?resources, %nonce, "pushed");
        }
        XdsEvent::Ack {
            node,
            type_url,
            resources,
            ..
        } => {
            tracing::info!(node = %node.id, %type_url, ?resources, "ACKed");
        }
        XdsEvent::Nack {
            node,
            type_url,
            resources,
            error,
            ..
        } => {
            tracing::warn!(node = %node.id, %type_url, ?resources, %error, "NACKed");
        }
        XdsEvent::Subscribed {
            node,
            type_url,
            names,
            wildcard,
            ..
        } => {
            tracing::debug!(node = %node.id, %type_url, ?names, wildcard, "subscribed");
        }
        XdsEvent::Refused { node, reason, .. } => {
            tracing::warn!(node = %node.id, cluster = %node.cluster, %reason, "stream refused");
        }
    }
}
