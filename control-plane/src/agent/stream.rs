//! One proxied ADS stream: Envoy ⇄ agent ⇄ control plane. Requests go up unchanged except
//! that the first one's node is stamped `meshplug.delivery: agent`. Responses come down
//! unchanged except filter configurations (ECDS) naming a remote module: those wait until the
//! module is in the host's cache, verified, and come down pointing at the cached file. While a
//! fetch fails the agent refuses that response upstream with a reason starting
//! [`FETCH_FAILED_PREFIX`] (the control plane records a fetch failure, not a NACK), keeps the
//! proxy on what it runs, and retries with backoff; a newer response replaces the one waiting.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};
use xds::proto::{
    AggregatedDiscoveryServiceClient, DiscoveryRequest, DiscoveryResponse, RpcStatus,
};
use xds::type_url;

use meshplug_core::nodes::{AGENT_DELIVERY, DELIVERY_KEY, FETCH_FAILED_PREFIX};
use meshplug_envoy::ecds::{remote_module, with_local_module};

use super::fetch::{Fetcher, error_chain};
use crate::tls::ClientTls;

/// What goes down to Envoy.
pub(super) type Downstream = ReceiverStream<Result<DiscoveryResponse, Status>>;

/// Envoy's last filter-configuration request: the subscription a refusal repeats.
type LastEcds = Arc<Mutex<Option<DiscoveryRequest>>>;

/// A connection to the control plane, with TLS (files read now) when `tls` is given.
async fn connect(
    upstream: &str,
    tls: Option<&ClientTls>,
) -> Result<AggregatedDiscoveryServiceClient<Channel>, String> {
    let mut endpoint = Endpoint::from_shared(upstream.to_string())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3));
    if let Some(tls) = tls {
        let config = tls.tonic().map_err(|e| e.to_string())?;
        endpoint = endpoint.tls_config(config).map_err(|e| error_chain(&e))?;
    }
    let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
    Ok(AggregatedDiscoveryServiceClient::new(channel))
}

/// Opens the upstream stream for one Envoy stream and starts relaying.
pub(super) async fn relay(
    (upstream, tls): (String, Option<ClientTls>),
    fetcher: Fetcher,
    downstream: Streaming<DiscoveryRequest>,
) -> Result<Downstream, Status> {
    let mut client = connect(&upstream, tls.as_ref())
        .await
        .map_err(|e| Status::unavailable(format!("control plane {upstream}: {e}")))?;
    let (up_tx, up_rx) = mpsc::channel::<DiscoveryRequest>(64);
    let responses = client
        .stream_aggregated_resources(ReceiverStream::new(up_rx))
        .await
        .map_err(|s| Status::unavailable(format!("control plane {upstream}: {}", s.message())))?
        .into_inner();
    let (down_tx, down_rx) = mpsc::channel(64);
    let (ecds_tx, ecds_rx) = watch::channel(None);
    let last_ecds = LastEcds::default();
    tokio::spawn(requests_up(
        downstream,
        up_tx.clone(),
        Arc::clone(&last_ecds),
    ));
    tokio::spawn(responses_down(responses, down_tx.clone(), ecds_tx));
    let worker = EcdsWorker {
        fetcher,
        up: up_tx,
        down: down_tx,
        last_ecds,
    };
    tokio::spawn(worker.run(ecds_rx));
    Ok(ReceiverStream::new(down_rx))
}

async fn requests_up(
    mut downstream: Streaming<DiscoveryRequest>,
    up: mpsc::Sender<DiscoveryRequest>,
    last_ecds: LastEcds,
) {
    loop {
        let mut request = match downstream.message().await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(%status, "proxy stream ended");
                break;
            }
        };
        if let Some(node) = request.node.as_mut() {
            let metadata = node.metadata.get_or_insert_with(Struct::default);
            metadata.fields.insert(
                DELIVERY_KEY.to_string(),
                Value {
                    kind: Some(Kind::StringValue(AGENT_DELIVERY.to_string())),
                },
            );
        }
        if request.type_url == type_url::EXTENSION_CONFIG {
            let mut kept = request.clone();
            kept.node = None;
            *last_ecds.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
        }
        if up.send(request).await.is_err() {
            break;
        }
    }
}

async fn responses_down(
    mut responses: Streaming<DiscoveryResponse>,
    down: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    ecds: watch::Sender<Option<DiscoveryResponse>>,
) {
    loop {
        match responses.message().await {
            Ok(Some(response)) if response.type_url == type_url::EXTENSION_CONFIG => {
                let _ = ecds.send(Some(response));
            }
            Ok(Some(response)) => {
                if down.send(Ok(response)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = down
                    .send(Err(Status::unavailable("control plane closed the stream")))
                    .await;
                return;
            }
            Err(status) => {
                let message = format!("control plane: {}", status.message());
                let _ = down.send(Err(Status::unavailable(message))).await;
                return;
            }
        }
    }
}

/// Turns filter-configuration responses into local ones, one at a time, the newest first.
struct EcdsWorker {
    fetcher: Fetcher,
    up: mpsc::Sender<DiscoveryRequest>,
    down: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    last_ecds: LastEcds,
}

impl EcdsWorker {
    async fn run(self, mut responses: watch::Receiver<Option<DiscoveryResponse>>) {
        'next: while responses.changed().await.is_ok() {
            let Some(response) = responses.borrow_and_update().clone() else {
                continue;
            };
            let mut attempt = 0u32;
            let mut told: Option<String> = None;
            loop {
                match localize(&self.fetcher, &response).await {
                    Ok(local) => {
                        if self.down.send(Ok(local)).await.is_err() {
                            return;
                        }
                        continue 'next;
                    }
                    Err(reason) => {
                        attempt += 1;
                        tracing::warn!(nonce = %response.nonce, attempt, %reason,
                            "artifact fetch failed; the proxy keeps its filters, retrying");
                        if told.as_deref() != Some(reason.as_str()) {
                            self.refuse(&response, &reason).await;
                            told = Some(reason);
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff(attempt)) => {}
                    changed = responses.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // A newer response: the loop takes it.
                        responses.mark_changed();
                        continue 'next;
                    }
                }
            }
        }
    }

    /// Tells the control plane this response cannot be applied yet, and why.
    async fn refuse(&self, response: &DiscoveryResponse, reason: &str) {
        let subscription = self
            .last_ecds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut request = subscription.unwrap_or_else(|| DiscoveryRequest {
            type_url: response.type_url.clone(),
            ..Default::default()
        });
        request.response_nonce.clone_from(&response.nonce);
        request.error_detail = Some(RpcStatus {
            code: tonic::Code::Unavailable as i32,
            message: format!("{FETCH_FAILED_PREFIX}{reason}"),
            details: Vec::new(),
        });
        let _ = self.up.send(request).await;
    }
}

/// `response` with every remote module replaced by its cached, verified copy; or why not.
async fn localize(
    fetcher: &Fetcher,
    response: &DiscoveryResponse,
) -> Result<DiscoveryResponse, String> {
    let mut local = response.clone();
    for resource in &mut local.resources {
        let module = match remote_module(resource) {
            Ok(Some(module)) => module,
            Ok(None) => continue,
            Err(err) => return Err(err.to_string()),
        };
        let path = fetcher.ensure(&module).await.map_err(|err| {
            format!(
                "filter {} (sha256 {}): {err}",
                module.filter,
                &module.sha256[..12]
            )
        })?;
        *resource = with_local_module(resource, &path).map_err(|e| e.to_string())?;
    }
    Ok(local)
}

/// 250 ms, doubling, at most 2 s: a restored artifact service is used within 2 s.
fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << attempt.saturating_sub(1).min(3));
    Duration::from_millis(ms.min(2_000))
}
