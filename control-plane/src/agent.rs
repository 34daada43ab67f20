//! `meshplug agent`: runs on each host whose proxies cannot read the control plane's disk
//! (as istio-agent does). Envoy's ADS cluster points at the agent on the host's loopback; the
//! agent relays each stream to the control plane, fetches every remote module a filter
//! configuration names from the artifact service, checks its sha256, caches it on the host,
//! and hands Envoy the configuration with the cached path. So Envoy only ever loads local
//! files, and an ACK means the module loaded, as on the control plane's own host. See
//! ARCHITECTURE.md, "Delivery to other hosts", for why this and not Envoy's remote source.
//!
//! State-of-the-world ADS only: a delta stream is refused with a message saying so.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

use crate::Error;
use crate::tls::ClientTls;

mod fetch;
mod stream;

pub use fetch::Fetcher;

/// Settings of `meshplug agent`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control plane's ADS address, `host:port`.
    pub control_plane: String,
    /// Where Envoy connects (the host's loopback).
    pub listen: SocketAddr,
    /// The host's artifact cache.
    pub cache_dir: PathBuf,
    /// Fetch from this base (`http://host:port`) instead of the URLs the control plane names.
    pub artifacts_url: Option<String>,
    /// Largest artifact fetched, in bytes.
    pub max_artifact_bytes: u64,
    /// A file to write the bound address to, as JSON, once serving.
    pub ready_file: Option<PathBuf>,
    /// TLS to the control plane (ADS and artifacts); `None`: plain TCP.
    pub tls: Option<ClientTls>,
}

/// The ADS service Envoy talks to.
#[derive(Debug, Clone)]
struct Agent {
    upstream: String,
    tls: Option<ClientTls>,
    fetcher: Fetcher,
}

type DeltaStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for Agent {
    type StreamAggregatedResourcesStream = stream::Downstream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let relayed = stream::relay(
            (self.upstream.clone(), self.tls.clone()),
            self.fetcher.clone(),
            request.into_inner(),
        )
        .await?;
        Ok(Response::new(relayed))
    }

    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "meshplug agent relays state-of-the-world ADS only: set ads_config.api_type: GRPC",
        ))
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let fetcher = Fetcher::with_tls(
        &config.cache_dir,
        config.artifacts_url.clone(),
        config.max_artifact_bytes,
        config.tls.clone(),
    )?;
    let dropped = fetcher.verify_cache()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(Error::io("binding", config.listen.to_string()))?;
    let bound = listener.local_addr().map_err(Error::io(
        "reading the bound address",
        config.listen.to_string(),
    ))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let upstream = match config.control_plane.contains("://") {
        true => config.control_plane.clone(),
        false => format!("{scheme}://{}", config.control_plane),
    };
    tracing::info!(listen = %bound, control_plane = %upstream,
        cache = %config.cache_dir.display(), dropped, "agent serving");
    if let Some(path) = &config.ready_file {
        crate::serve::write_ready_file(path, &serde_json::json!({ "listen": bound }))?;
    }
    let tls = config.tls;
    let agent = Agent {
        upstream,
        tls,
        fetcher,
    };
    tonic::transport::Server::builder()
        .add_service(AggregatedDiscoveryServiceServer::new(agent))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| Error::Agent(format!("serving on {bound}: {e}")))
}

#[cfg(test)]
mod tests;
