//! Which version every node was sent, ACKed or NACKed, from the xDS stream events. Pure state.

use std::collections::BTreeMap;

use serde::Serialize;
use xds::{ResourceVersion, XdsEvent, type_url};

/// One node as the control plane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// The Envoy version it reported.
    pub envoy_version: Option<String>,
    /// Its string metadata.
    pub metadata: BTreeMap<String, String>,
    /// Whether it has an open ADS stream.
    pub connected: bool,
    /// When its current (or last) stream opened, ms since the Unix epoch.
    pub connected_since_unix_ms: u64,
    /// ECDS resources by filter name.
    pub filters: BTreeMap<String, FilterOnNode>,
    /// With a composed mesh: each listener's filter chain on this node, in order (filled in
    /// by the admin API).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub chains: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    open_streams: u32,
}

/// One filter on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilterOnNode {
    /// The version label the rollout engine wants this node to run (filled in by the admin
    /// API from the engine's state).
    pub desired: Option<String>,
    /// The version label last sent.
    pub sent: Option<String>,
    /// The version label last ACKed.
    pub acked: Option<String>,
    /// The version label ACKed and then seen loading (`config_reload` moved with no load
    /// error after it was sent; filled in by the admin API from the engine's state).
    pub applied: Option<String>,
    /// The last NACK.
    pub last_nack: Option<Nack>,
    /// How many responses carried this filter to the node.
    pub sends: u64,
}

/// A rejected version and the node's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// The version label rejected.
    pub version: String,
    /// Envoy's `error_detail` message.
    pub error: String,
    /// When, ms since the Unix epoch.
    pub at_unix_ms: u64,
}

/// All nodes seen, by id.
#[derive(Debug, Default, Clone)]
pub struct Fleet {
    nodes: BTreeMap<String, NodeStatus>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeStatus> {
        self.nodes.values()
    }

    /// One node.
    pub fn node(&self, id: &str) -> Option<&NodeStatus> {
        self.nodes.get(id)
    }

    /// Forgets node `id` (disconnected too long).
    pub fn forget(&mut self, id: &str) {
        self.nodes.remove(id);
    }

    /// Applies one stream event observed at `now_ms`.
    pub fn apply(&mut self, event: &XdsEvent, now_ms: u64) {
        if matches!(event, XdsEvent::Refused { .. }) {
            return; // never a node of the fleet
        }
        let info = event.node();
        let node = self
            .nodes
            .entry(info.id.clone())
            .or_insert_with(|| NodeStatus {
                id: info.id.clone(),
                cluster: info.cluster.clone(),
                envoy_version: info.user_agent_version.clone(),
                metadata: info.metadata.clone(),
                connected: false,
                connected_since_unix_ms: now_ms,
                filters: BTreeMap::new(),
                chains: BTreeMap::new(),
                open_streams: 0,
            });
        match event {
            XdsEvent::StreamOpened { node: info, .. } => {
                node.open_streams += 1;
                node.connected = true;
                node.connected_since_unix_ms = now_ms;
                node.cluster = info.cluster.clone();
                node.envoy_version = info.user_agent_version.clone();
                node.metadata = info.metadata.clone();
            }
            XdsEvent::StreamClosed { .. } => {
                node.open_streams = node.open_streams.saturating_sub(1);
                node.connected = node.open_streams > 0;
            }
            XdsEvent::Sent {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                for filter in filters(node, resources) {
                    let (state, version) = filter;
                    state.sent = Some(version.to_string());
                    state.sends += 1;
                }
            }
            XdsEvent::Ack {
                type_url: t,
                resources,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                for (state, version) in filters(node, resources) {
                    state.acked = Some(version.to_string());
                }
            }
            XdsEvent::Nack {
                type_url: t,
                resources,
                error,
                ..
            } if t == type_url::EXTENSION_CONFIG => {
                for (state, version) in filters(node, resources) {
                    if state.acked.as_deref() == Some(version) {
                        continue; // this resource was not what the node rejected
                    }
                    state.last_nack = Some(Nack {
                        version: version.to_string(),
                        error: error.clone(),
                        at_unix_ms: now_ms,
                    });
                }
            }
            _ => {}
        }
    }
}

fn filters<'a>(
    node: &'a mut NodeStatus,
    resources: &'a [ResourceVersion],
) -> impl Iterator<Item = (&'a mut FilterOnNode, &'a str)> {
    let mut out = Vec::new();
    let filters = &mut node.filters;
    for resource in resources {
        filters.entry(resource.name.clone()).or_default();
    }
    for (name, state) in filters.iter_mut() {
        if let Some(resource) = resources.iter().find(|r| &r.name == name) {
            out.push((state, resource.version.as_str()));
        }
    }
    out.into_iter()
}

#[cfg(test)]
mod tests;
