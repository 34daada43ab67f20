//! The ADS and MetricsService gRPC server: one handler of stream events (the engine's node
//! model takes each), the grouper that decides a proxy's versions before it is served,
//! idle connections closed, and a graceful stop.

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
use crate::xds_metrics::XdsMetrics;

/// Serves ADS and the MetricsService on `listener` until `stop`.
pub(super) async fn serve_xds(
    listener: TcpListener,
    cache: Arc<SnapshotCache>,
    engine: Arc<Mutex<Engine>>,
    xds_metrics: Arc<XdsMetrics>,
    guards: Guards,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let refusals = xds_metrics.refusals();
    let events = Arc::clone(&engine);
    // The one handler of stream events: the node model (in the engine) takes each.
    let sink = move |event: XdsEvent| {
        log_event(&event);
        xds_metrics.observe(&event);
        let mut engine = events.lock().unwrap_or_else(PoisonError::into_inner);
        engine.on_event(&event, unix_ms());
        xds_metrics.set_connected(engine.nodes().connected_count());
    };
    let connects = Arc::clone(&engine);
    let grouper = Arc::new(move |node: &NodeInfo| {
        connects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_connect(node, unix_ms())
    });
    let server = AdsServer::with_grouper(cache, sink, grouper);
    server.set_max_node_bytes(guards.max_node_bytes);
    let closer = server.clone();
    let metrics_stop = stop.clone();
    let idle = guards.xds_idle_timeout;
    let incoming = TcpListenerStream::new(listener).map(move |accepted| {
        accepted.map(|stream| {
            let stream = IdleTimeout::new(stream, idle);
            match &refusals {
                Some(refusals) => stream.counted(Arc::clone(refusals)),
                None => stream,
            }
        })
    });
    // On stop: no new connections; each ADS stream finishes the response in hand and ends;
    // metrics streams end; then the server returns.
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(idle / 3))
        .http2_keepalive_timeout(Some(idle / 3))
        .add_service(server.into_service())
        .add_service(MetricsSink::new(engine, metrics_stop).into_service())
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            closer.close();
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "xDS server failed");
    }
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
        XdsEvent::Refused { node, reason, .. } => {
            tracing::warn!(node = %node.id, cluster = %node.cluster, %reason, "stream refused");
        }
    }
}
