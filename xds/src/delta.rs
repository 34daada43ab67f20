//! The protocol state of one incremental (Delta) ADS stream. Pure, like [`crate::stream`]: it
//! turns requests and new snapshots into events and responses.
//!
//! Per type it keeps what the node subscribed to (names, or the wildcard that LDS and CDS
//! mean by an empty first request) and what the node holds (name → version, from what was
//! sent, or from `initial_resource_versions` after a reconnect). A response carries only
//! resources whose content changed and the names of ones that went away. A NACKed version
//! stays recorded as sent, so it is not sent again until it changes (no NACK loop).

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use sha2::{Digest, Sha256};

use crate::snapshot::hex_prefix;
use crate::stream::Outcome;
use crate::{NodeInfo, ResourceVersion, Snapshot, StreamId, XdsError, XdsEvent, type_url};

/// The state of one Delta ADS stream.
#[derive(Debug)]
pub(crate) struct DeltaState {
    id: StreamId,
    node: NodeInfo,
    types: BTreeMap<String, DeltaSubscription>,
    nonces_issued: u64,
}

#[derive(Debug, Default)]
struct DeltaSubscription {
    names: BTreeSet<String>,
    wildcard: bool,
    /// What the node holds: name → version label.
    held: BTreeMap<String, String>,
    /// Responses not yet answered: nonce → what they carried.
    pending: BTreeMap<String, Vec<ResourceVersion>>,
    answered_once: bool,
}

impl DeltaState {
    pub(crate) fn new(id: StreamId, node: NodeInfo) -> Self {
        Self {
            id,
            node,
            types: BTreeMap::new(),
            nonces_issued: 0,
        }
    }

    pub(crate) fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// Handles one request: an ACK or NACK of an earlier response, subscription changes, or
    /// both; then sends what the node is missing.
    pub(crate) fn on_request(
        &mut self,
        request: DeltaDiscoveryRequest,
        snapshot: &Snapshot,
        out: &mut Outcome<DeltaDiscoveryResponse>,
    ) -> Result<(), XdsError> {
        let type_url = request.type_url.clone();
        if type_url.is_empty() {
            return Err(XdsError::MissingTypeUrl);
        }
        let first = !self.types.contains_key(&type_url);
        let subscription = self.types.entry(type_url.clone()).or_default();
        if first {
            subscription.held = request
                .initial_resource_versions
                .clone()
                .into_iter()
                .collect();
            // An empty first request means "everything" for the types Envoy fetches whole.
            subscription.wildcard = request.resource_names_subscribe.is_empty()
                && (type_url == type_url::LISTENER || type_url == type_url::CLUSTER);
        }
        if !request.response_nonce.is_empty()
            && let Some(resources) = subscription.pending.remove(&request.response_nonce)
        {
            out.events.push(self.ack_or_nack(&request, resources));
        }
        let subscription = self.types.entry(type_url.clone()).or_default();
        let before = (subscription.wildcard, subscription.names.clone());
        for name in request.resource_names_subscribe {
            if name == "*" {
                subscription.wildcard = true;
            } else {
                subscription.names.insert(name);
            }
        }
        for name in request.resource_names_unsubscribe {
            if name == "*" {
                subscription.wildcard = false;
            } else {
                subscription.names.remove(&name);
                // The node forgets it; a later subscribe must send it again.
                subscription.held.remove(&name);
            }
        }
        if first || before != (subscription.wildcard, subscription.names.clone()) {
            out.events.push(XdsEvent::Subscribed {
                stream: self.id,
                node: self.node.clone(),
                type_url: type_url.clone(),
                names: subscription.names.iter().cloned().collect(),
                wildcard: subscription.wildcard,
            });
        }
        self.respond(&type_url, snapshot, out);
        Ok(())
    }

    /// Sends every subscription what changed in `snapshot`, in dependency order.
    pub(crate) fn on_snapshot(
        &mut self,
        snapshot: &Snapshot,
        out: &mut Outcome<DeltaDiscoveryResponse>,
    ) {
        let mut type_urls: Vec<String> = self.types.keys().cloned().collect();
        type_urls.sort_by(|a, b| type_url::send_order(a).cmp(&type_url::send_order(b)));
        for type_url in type_urls {
            self.respond(&type_url, snapshot, out);
        }
    }

    fn respond(
        &mut self,
        type_url: &str,
        snapshot: &Snapshot,
        out: &mut Outcome<DeltaDiscoveryResponse>,
    ) {
        let Some(subscription) = self.types.get_mut(type_url) else {
            return;
        };
        let typed = snapshot.resources(type_url);
        let (_, selected) = match typed {
            Some(typed) => typed.select(&subscription.names, subscription.wildcard),
            None => (String::new(), Vec::new()),
        };
        let changed: Vec<_> = selected
            .iter()
            .filter(|s| subscription.held.get(s.name).map(String::as_str) != Some(s.version))
            .collect();
        let present: BTreeSet<&str> = selected.iter().map(|s| s.name).collect();
        let removed: Vec<String> = subscription
            .held
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .cloned()
            .collect();
        // A wildcard subscription is answered once even when empty: Envoy's initial fetch of
        // listeners and clusters waits for it.
        let first_empty = subscription.wildcard && !subscription.answered_once && typed.is_some();
        if changed.is_empty() && removed.is_empty() && !first_empty {
            return;
        }
        subscription.answered_once = true;
        self.nonces_issued += 1;
        let nonce = format!("{}-d{}", self.id, self.nonces_issued);
        let resources: Vec<ResourceVersion> = changed.iter().map(|s| s.to_version()).collect();
        for s in &changed {
            subscription
                .held
                .insert(s.name.to_string(), s.version.to_string());
        }
        for name in &removed {
            subscription.held.remove(name);
        }
        let system_version = held_digest(&subscription.held);
        subscription
            .pending
            .insert(nonce.clone(), resources.clone());
        let response = DeltaDiscoveryResponse {
            system_version_info: system_version.clone(),
            resources: changed
                .iter()
                .map(|s| Resource {
                    name: s.name.to_string(),
                    version: s.version.to_string(),
                    resource: Some(s.body.clone()),
                    ..Default::default()
                })
                .collect(),
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce: nonce.clone(),
            ..Default::default()
        };
        let sent = XdsEvent::Sent {
            stream: self.id,
            node: self.node.clone(),
            type_url: type_url.to_string(),
            version: system_version,
            nonce,
            resources,
        };
        out.responses.push((response, sent));
    }

    fn ack_or_nack(
        &self,
        request: &DeltaDiscoveryRequest,
        resources: Vec<ResourceVersion>,
    ) -> XdsEvent {
        let (stream, node) = (self.id, self.node.clone());
        let (type_url, nonce) = (request.type_url.clone(), request.response_nonce.clone());
        match &request.error_detail {
            Some(detail) => XdsEvent::Nack {
                stream,
                node,
                type_url,
                version: String::new(),
                nonce,
                resources,
                error: detail.message.clone(),
            },
            None => XdsEvent::Ack {
                stream,
                node,
                type_url,
                version: String::new(),
                nonce,
                resources,
            },
        }
    }
}

/// A short digest of what the node holds, as the response's `system_version_info`.
fn held_digest(held: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, version) in held {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((version.len() as u64).to_be_bytes());
        hasher.update(version.as_bytes());
    }
    hex_prefix(&hasher.finalize(), 8)
}

#[cfg(test)]
mod tests;
