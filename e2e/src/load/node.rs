//! One simulated Envoy node.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::{BuildVersion, Node, node::UserAgentVersionType};
use envoy_types::pb::envoy::r#type::v3::SemanticVersion;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use meshplug_core::nodes::FETCH_FAILED_PREFIX;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use xds::proto::{
    AggregatedDiscoveryServiceClient, DiscoveryRequest, DiscoveryResponse, RpcStatus,
};
use xds::type_url;

use super::{LoadConfig, Receipt};

/// What a node does with responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeBehaviour {
    /// ACKs every response.
    Ack,
    /// NACKs every response.
    Nack,
    /// Reads its first response, answers it, then never reads again.
    SlowReader,
}

/// What a node saw.
#[derive(Debug, Default)]
pub struct NodeRecord {
    /// Every response received, in order.
    pub receipts: Vec<Receipt>,
    /// How many times the stream was opened.
    pub connects: u32,
}

fn node_proto(config: &LoadConfig, id: &str) -> Node {
    let label = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_string())),
    };
    let mut metadata = Struct::default();
    metadata.fields.insert("simulated".into(), label("true"));
    if config.fetch.is_some() {
        metadata.fields.insert(
            meshplug_core::nodes::DELIVERY_KEY.into(),
            label(meshplug_core::nodes::AGENT_DELIVERY),
        );
    }
    Node {
        id: id.to_string(),
        cluster: format!("{}-cluster", config.id_prefix),
        user_agent_name: "envoy".into(),
        user_agent_version_type: Some(UserAgentVersionType::UserAgentBuildVersion(BuildVersion {
            version: Some(SemanticVersion {
                major_number: 1,
                minor_number: 40,
                patch: 0,
            }),
            metadata: None,
        })),
        metadata: Some(metadata),
        ..Default::default()
    }
}

/// Runs the node until aborted, reconnecting with backoff.
pub async fn run(
    config: LoadConfig,
    id: String,
    behaviour: NodeBehaviour,
    record: Arc<Mutex<NodeRecord>>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut last_acked = String::new();
    let mut have = HashSet::new();
    loop {
        record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .connects += 1;
        let state = (&mut last_acked, &mut have);
        let outcome = session(&config, &id, behaviour, &record, state).await;
        if behaviour == NodeBehaviour::SlowReader && outcome.is_ok() {
            // It stopped reading on purpose; hold the stream open forever.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn session(
    config: &LoadConfig,
    id: &str,
    behaviour: NodeBehaviour,
    record: &Mutex<NodeRecord>,
    (last_acked, have): (&mut String, &mut HashSet<String>),
) -> Result<(), String> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", config.target))
            .map_err(|e| e.to_string())?
            .initial_stream_window_size(Some(65_535))
            .initial_connection_window_size(Some(65_535))
            .connect_timeout(Duration::from_secs(10));
    if let Some(tls) = &config.tls {
        endpoint = endpoint
            .tls_config(tls.client(id)?)
            .map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(4);
    let first = DiscoveryRequest {
        node: Some(node_proto(config, id)),
        type_url: type_url::EXTENSION_CONFIG.into(),
        resource_names: config.resource_names.clone(),
        version_info: last_acked.clone(),
        ..Default::default()
    };
    tx.send(first).await.map_err(|e| e.to_string())?;
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    loop {
        let response = match inbound.message().await {
            Ok(Some(response)) => response,
            Ok(None) => return Err("stream ended".into()),
            Err(status) => return Err(status.to_string()),
        };
        let received = Instant::now();
        let fetched = match &config.fetch {
            Some(fetching) => fetching.fetch_all(&response, have).await,
            None => Ok(0),
        };
        let refusal = match (&fetched, behaviour) {
            (Err(reason), _) => Some(format!("{FETCH_FAILED_PREFIX}{reason}")),
            (Ok(_), NodeBehaviour::Nack) => Some("simulated NACK".to_string()),
            _ => None,
        };
        let nack = refusal.is_some();
        let answer = answer_for(config, &response, refusal, last_acked);
        tx.send(answer).await.map_err(|e| e.to_string())?;
        let answered = Instant::now();
        if !nack {
            last_acked.clone_from(&response.version_info);
        }
        record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .receipts
            .push(Receipt {
                version: response.version_info.clone(),
                received,
                answered: Some(answered),
                bytes: response.encoded_len(),
                nacked: nack,
                fetched: fetched.unwrap_or(0),
            });
        if behaviour == NodeBehaviour::SlowReader {
            // Keep the stream and its sender alive, but never read again.
            std::future::pending::<()>().await;
        }
    }
}

fn answer_for(
    config: &LoadConfig,
    response: &DiscoveryResponse,
    refusal: Option<String>,
    last_acked: &str,
) -> DiscoveryRequest {
    let nack = refusal.is_some();
    DiscoveryRequest {
        type_url: response.type_url.clone(),
        resource_names: config.resource_names.clone(),
        response_nonce: response.nonce.clone(),
        version_info: if nack {
            last_acked.to_string()
        } else {
            response.version_info.clone()
        },
        error_detail: refusal.map(|message| RpcStatus {
            code: 3,
            message,
            details: vec![],
        }),
        ..Default::default()
    }
}
