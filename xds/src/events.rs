use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{Node, node::UserAgentVersionType};
use envoy_types::pb::google::protobuf::value::Kind;

use crate::ResourceVersion;

/// A process-unique id of one ADS stream.
pub type StreamId = u64;

/// What the server knows of the node at the other end of a stream, from its first request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.user_agent_name`, e.g. `envoy`.
    pub user_agent_name: String,
    /// `node.user_agent_build_version` as `major.minor.patch`, or the free-form
    /// `user_agent_version`.
    pub user_agent_version: Option<String>,
    /// The string-valued fields of `node.metadata`.
    pub metadata: BTreeMap<String, String>,
}

impl NodeInfo {
    /// Reads the parts of an Envoy `Node` this crate reports.
    pub fn from_proto(node: &Node) -> Self {
        let user_agent_version = match &node.user_agent_version_type {
            Some(UserAgentVersionType::UserAgentVersion(v)) => Some(v.clone()),
            Some(UserAgentVersionType::UserAgentBuildVersion(build)) => build
                .version
                .as_ref()
                .map(|v| format!("{}.{}.{}", v.major_number, v.minor_number, v.patch)),
            None => None,
        };
        let metadata = node
            .metadata
            .as_ref()
            .map(|meta| {
                meta.fields
                    .iter()
                    .filter_map(|(key, value)| match &value.kind {
                        Some(Kind::StringValue(s)) => Some((key.clone(), s.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: node.id.clone(),
            cluster: node.cluster.clone(),
            user_agent_name: node.user_agent_name.clone(),
            user_agent_version,
            metadata,
        }
    }
}

/// Something that happened on an ADS stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XdsEvent {
    /// A stream sent its first request.
    StreamOpened {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
    },
    /// A stream ended, for whatever reason.
    StreamClosed {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
    },
    /// The server sent a response.
    Sent {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
        /// Resource type.
        type_url: String,
        /// `version_info` of the response.
        version: String,
        /// `nonce` of the response.
        nonce: String,
        /// The resources it carried.
        resources: Vec<ResourceVersion>,
    },
    /// The node accepted a response.
    Ack {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
        /// Resource type.
        type_url: String,
        /// The version accepted.
        version: String,
        /// The nonce of the response accepted.
        nonce: String,
        /// The resources that response carried.
        resources: Vec<ResourceVersion>,
    },
    /// The node rejected a response; it keeps its previous configuration.
    Nack {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
        /// Resource type.
        type_url: String,
        /// The version rejected.
        version: String,
        /// The nonce of the response rejected.
        nonce: String,
        /// The resources that response carried.
        resources: Vec<ResourceVersion>,
        /// `error_detail.message` as the node wrote it.
        error: String,
    },
    /// A node asked for a different set of resources of a type: what its configuration
    /// refers to (for ECDS, the filter slots its listeners hold). Reported when it changes.
    Subscribed {
        /// The stream.
        stream: StreamId,
        /// Its node.
        node: NodeInfo,
        /// Resource type.
        type_url: String,
        /// The names it asks for, sorted (empty with `wildcard`).
        names: Vec<String>,
        /// Whether it asks for every resource of the type.
        wildcard: bool,
    },
    /// A stream was refused before it opened (its node is over the size limit, say); the
    /// node was told why in the stream's status. `node` carries only id and cluster.
    Refused {
        /// The stream.
        stream: StreamId,
        /// Its node: id and cluster only.
        node: NodeInfo,
        /// Why.
        reason: String,
        /// Which check refused it.
        cause: RefusalCause,
    },
}

/// Which check refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCause {
    /// Its node is over the size limit.
    NodeTooLarge,
    /// The [`NodeAuthorizer`](crate::NodeAuthorizer) refused its peer for that node.
    Unauthorized,
}

impl XdsEvent {
    /// The node the event concerns.
    pub fn node(&self) -> &NodeInfo {
        match self {
            Self::StreamOpened { node, .. }
            | Self::StreamClosed { node, .. }
            | Self::Sent { node, .. }
            | Self::Ack { node, .. }
            | Self::Nack { node, .. }
            | Self::Subscribed { node, .. }
            | Self::Refused { node, .. } => node,
        }
    }
}

/// Receives stream events. Called inline on the stream's task, so it must not block.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event.
    fn on_event(&self, event: XdsEvent);
}

impl<F> EventSink for F
where
    F: Fn(XdsEvent) + Send + Sync + 'static,
{
    fn on_event(&self, event: XdsEvent) {
        self(event)
    }
}
