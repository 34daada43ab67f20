use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::CertificateDer;
use tonic::{Status, Streaming};

use crate::delta::DeltaState;
use crate::grpc::AdsService;
use crate::stream::{Outcome, StreamState};
use crate::{
    EventSink, NodeInfo, RefusalCause, Snapshot, SnapshotCache, StreamId, XdsError, XdsEvent,
};

/// Maps a node to the key of the snapshot it is served.
pub type NodeGrouper = Arc<dyn Fn(&NodeInfo) -> String + Send + Sync>;

/// The certificates a stream's peer presented over TLS (leaf first); `None` on plain TCP or
/// when the server asks for none.
pub type PeerCerts = Option<Arc<Vec<CertificateDer<'static>>>>;

/// Decides whether a stream's peer may speak for the node its first request names:
/// `Err(reason)` refuses the stream with `PERMISSION_DENIED` and the reason.
pub type NodeAuthorizer =
    Arc<dyn Fn(&NodeInfo, Option<&[CertificateDer<'static>]>) -> Result<(), String> + Send + Sync>;

/// How many responses may wait for a slow stream before its task waits for it. Only that
/// stream's task waits; the others go on.
const RESPONSE_QUEUE: usize = 4;

/// The ADS gRPC service over a [`SnapshotCache`].
#[derive(Clone)]
pub struct AdsServer {
    shared: Arc<Shared>,
}

/// The largest node (id, cluster, metadata, …) a stream may open with, by default: 256 KiB.
pub const DEFAULT_MAX_NODE_BYTES: usize = 256 * 1024;

struct Shared {
    max_node_bytes: AtomicUsize,
    cache: Arc<SnapshotCache>,
    grouper: NodeGrouper,
    authorizer: OnceLock<NodeAuthorizer>,
    sink: Arc<dyn EventSink>,
    next_stream: AtomicU64,
    closing: watch::Sender<bool>,
}

impl fmt::Debug for AdsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdsServer")
            .field("cache", &self.shared.cache)
            .finish_non_exhaustive()
    }
}

impl AdsServer {
    /// A server that serves each node the snapshot keyed by its node id, and reports events to
    /// `sink`.
    pub fn new(cache: Arc<SnapshotCache>, sink: impl EventSink) -> Self {
        Self::with_grouper(cache, sink, Arc::new(|node: &NodeInfo| node.id.clone()))
    }

    /// A server that serves each node the snapshot keyed by `grouper(node)`.
    pub fn with_grouper(
        cache: Arc<SnapshotCache>,
        sink: impl EventSink,
        grouper: NodeGrouper,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                max_node_bytes: AtomicUsize::new(DEFAULT_MAX_NODE_BYTES),
                cache,
                grouper,
                authorizer: OnceLock::new(),
                sink: Arc::new(sink),
                next_stream: AtomicU64::new(1),
                closing: watch::channel(false).0,
            }),
        }
    }

    /// Ends every open stream, and every stream opened from now on, once its current response
    /// is handed over: the RPCs finish with status OK, so a graceful server shutdown does not
    /// wait for proxies that never hang up.
    pub fn close(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Refuses streams whose first request carries a node larger than `bytes` (encoded).
    pub fn set_max_node_bytes(&self, bytes: usize) {
        self.shared.max_node_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Checks every stream's node against its peer with `authorizer` (set once, before
    /// serving; a second call is ignored).
    pub fn set_authorizer(&self, authorizer: NodeAuthorizer) {
        let _ = self.shared.authorizer.set(authorizer);
    }

    /// The tonic service to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AdsService {
        AdsService::new(self)
    }
}

/// The stream of responses to one ADS stream.
pub type ResponseStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

/// The stream of responses to one Delta ADS stream.
pub type DeltaResponseStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

/// One flavour of the ADS protocol: its messages and its per-stream state.
pub(crate) trait Protocol: Sized + Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    fn open(id: StreamId, node: NodeInfo) -> Self;
    fn first_node(request: &Self::Request) -> Option<&Node>;
    fn node(&self) -> &NodeInfo;
    fn on_request(
        &mut self,
        request: Self::Request,
        snapshot: &Snapshot,
        out: &mut Outcome<Self::Response>,
    ) -> Result<(), XdsError>;
    fn on_snapshot(&mut self, snapshot: &Snapshot, out: &mut Outcome<Self::Response>);
}

impl Protocol for StreamState {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    fn open(id: StreamId, node: NodeInfo) -> Self {
        Self::new(id, node)
    }
    fn first_node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn node(&self) -> &NodeInfo {
        StreamState::node(self)
    }
    fn on_request(
        &mut self,
        request: DiscoveryRequest,
        snapshot: &Snapshot,
        out: &mut Outcome,
    ) -> Result<(), XdsError> {
        StreamState::on_request(self, request, snapshot, out)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot, out: &mut Outcome) {
        StreamState::on_snapshot(self, snapshot, out);
    }
}

impl Protocol for DeltaState {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    fn open(id: StreamId, node: NodeInfo) -> Self {
        Self::new(id, node)
    }
    fn first_node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn node(&self) -> &NodeInfo {
        DeltaState::node(self)
    }
    fn on_request(
        &mut self,
        request: DeltaDiscoveryRequest,
        snapshot: &Snapshot,
        out: &mut Outcome<DeltaDiscoveryResponse>,
    ) -> Result<(), XdsError> {
        DeltaState::on_request(self, request, snapshot, out)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot, out: &mut Outcome<DeltaDiscoveryResponse>) {
        DeltaState::on_snapshot(self, snapshot, out);
    }
}

impl AdsServer {
    /// Serves one ADS stream: a task follows the node's snapshot and answers its requests.
    pub(crate) fn open_stream(
        &self,
        certs: PeerCerts,
        inbound: Streaming<DiscoveryRequest>,
    ) -> ResponseStream {
        self.open::<StreamState>(certs, inbound)
    }

    /// Serves one Delta ADS stream.
    pub(crate) fn open_delta_stream(
        &self,
        certs: PeerCerts,
        inbound: Streaming<DeltaDiscoveryRequest>,
    ) -> DeltaResponseStream {
        self.open::<DeltaState>(certs, inbound)
    }

    fn open<P: Protocol>(
        &self,
        certs: PeerCerts,
        inbound: Streaming<P::Request>,
    ) -> ReceiverStream<Result<P::Response, Status>> {
        let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
        let id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(run_stream::<P>(
            Arc::clone(&self.shared),
            (id, certs),
            inbound,
            tx,
        ));
        ReceiverStream::new(rx)
    }
}

type Responder<R> = mpsc::Sender<Result<R, Status>>;

async fn run_stream<P: Protocol>(
    shared: Arc<Shared>,
    (id, certs): (StreamId, PeerCerts),
    mut inbound: Streaming<P::Request>,
    tx: Responder<P::Response>,
) {
    let first = match inbound.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            tracing::warn!(stream = id, %status, "ADS stream refused: its first request could not be read");
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    let Some(proto) = P::first_node(&first) else {
        let _ = tx.send(Err(XdsError::MissingNode.into())).await;
        return;
    };
    let (size, limit) = (
        prost::Message::encoded_len(proto),
        shared.max_node_bytes.load(Ordering::Relaxed),
    );
    let admitted = if size > limit {
        let err = XdsError::NodeTooLarge { size, limit };
        Err((err, RefusalCause::NodeTooLarge))
    } else {
        let node = NodeInfo::from_proto(proto);
        match authorize(&shared, &node, &certs) {
            Ok(()) => Ok(node),
            Err(reason) => Err((XdsError::Unauthorized(reason), RefusalCause::Unauthorized)),
        }
    };
    let node = match admitted {
        Ok(node) => node,
        Err((err, cause)) => {
            let node = NodeInfo {
                id: proto.id.chars().take(256).collect(),
                cluster: proto.cluster.chars().take(256).collect(),
                ..NodeInfo::default()
            };
            let reason = err.to_string();
            let _ = tx.send(Err(err.into())).await;
            shared.sink.on_event(XdsEvent::Refused {
                stream: id,
                node,
                reason,
                cause,
            });
            return;
        }
    };
    let group = (shared.grouper)(&node);
    tracing::debug!(stream = id, node = %node.id, %group, "ADS stream opened");
    let snapshots = shared.cache.watch(&group);
    let mut state = P::open(id, node);
    shared.sink.on_event(XdsEvent::StreamOpened {
        stream: id,
        node: state.node().clone(),
    });
    let result = serve_stream(&shared, &mut state, first, inbound, snapshots, &tx).await;
    if let Err(err) = result {
        tracing::debug!(stream = id, error = %err, "ADS stream ended with an error");
        if !matches!(err, XdsError::StreamClosed) {
            let _ = tx.send(Err(err.into())).await;
        }
    }
    shared.sink.on_event(XdsEvent::StreamClosed {
        stream: id,
        node: state.node().clone(),
    });
}

fn authorize(shared: &Shared, node: &NodeInfo, certs: &PeerCerts) -> Result<(), String> {
    match shared.authorizer.get() {
        Some(authorizer) => authorizer(node, certs.as_deref().map(Vec::as_slice)),
        None => Ok(()),
    }
}

async fn serve_stream<P: Protocol>(
    shared: &Shared,
    state: &mut P,
    first: P::Request,
    mut inbound: Streaming<P::Request>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    tx: &Responder<P::Response>,
) -> Result<(), XdsError> {
    let mut closing = shared.closing.subscribe();
    let mut pending = Some(first);
    loop {
        if *closing.borrow_and_update() {
            return Ok(());
        }
        let mut out = Outcome::default();
        if let Some(request) = pending.take() {
            let snapshot = snapshots.borrow_and_update().clone();
            state.on_request(request, &snapshot, &mut out)?;
        } else {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(request)) => pending = Some(request),
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        tracing::debug!(stream = ?state.node().id, %status, "ADS stream read failed");
                        return Err(XdsError::Request(status));
                    }
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    state.on_snapshot(&snapshot, &mut out);
                }
                _ = closing.changed() => return Ok(()),
            }
        }
        deliver(shared, tx, out).await?;
    }
}

async fn deliver<R>(shared: &Shared, tx: &Responder<R>, out: Outcome<R>) -> Result<(), XdsError> {
    for event in out.events {
        shared.sink.on_event(event);
    }
    for (response, sent) in out.responses {
        tx.send(Ok(response))
            .await
            .map_err(|_| XdsError::StreamClosed)?;
        shared.sink.on_event(sent);
    }
    Ok(())
}
