use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use crate::{NodeInfo, ResourceVersion, Snapshot, StreamId, XdsError, XdsEvent};

/// The protocol state of one state-of-the-world ADS stream. Pure: it turns requests and new
/// snapshots into events and responses, and the server does the I/O.
#[derive(Debug)]
pub(crate) struct StreamState {
    id: StreamId,
    node: NodeInfo,
    types: BTreeMap<String, Subscription>,
    nonces_issued: u64,
}

/// One resource type's subscription on a stream.
#[derive(Debug, Default)]
struct Subscription {
    names: BTreeSet<String>,
    wildcard: bool,
    last_sent: Option<SentResponse>,
}

#[derive(Debug)]
struct SentResponse {
    version: String,
    nonce: String,
    resources: Vec<ResourceVersion>,
}

/// What a step of the protocol produced, in order: events to report at once (ACK, NACK), and
/// responses, each with the `Sent` event to report once it is handed to the stream.
#[derive(Debug)]
pub(crate) struct Outcome<R = DiscoveryResponse> {
    pub(crate) events: Vec<XdsEvent>,
    pub(crate) responses: Vec<(R, XdsEvent)>,
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            responses: Vec::new(),
        }
    }
}

impl StreamState {
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

    /// Handles a request: records its ACK or NACK, updates the subscription, and answers when
    /// the node's view of that type is out of date. Stale nonces are ignored.
    pub(crate) fn on_request(
        &mut self,
        request: DiscoveryRequest,
        snapshot: &Snapshot,
        out: &mut Outcome,
    ) -> Result<(), XdsError> {
        if request.type_url.is_empty() {
            return Err(XdsError::MissingTypeUrl);
        }
        let first = !self.types.contains_key(&request.type_url);
        let subscription = self.types.entry(request.type_url.clone()).or_default();
        if !request.response_nonce.is_empty() {
            let Some(sent) = subscription
                .last_sent
                .as_ref()
                .filter(|sent| sent.nonce == request.response_nonce)
            else {
                return Ok(());
            };
            let event = ack_or_nack(self.id, &self.node, &request, sent);
            out.events.push(event);
        }
        let wildcard = request.resource_names.is_empty()
            || request.resource_names.iter().any(|name| name == "*");
        let names: BTreeSet<String> = request
            .resource_names
            .into_iter()
            .filter(|name| name != "*")
            .collect();
        if first || subscription.wildcard != wildcard || subscription.names != names {
            out.events.push(XdsEvent::Subscribed {
                stream: self.id,
                node: self.node.clone(),
                type_url: request.type_url.clone(),
                names: names.iter().cloned().collect(),
                wildcard,
            });
        }
        subscription.wildcard = wildcard;
        subscription.names = names;
        self.respond(&request.type_url, snapshot, out);
        Ok(())
    }

    /// Answers every subscription whose selection changed in `snapshot`, in dependency order
    /// (see [`crate::type_url::send_order`]).
    pub(crate) fn on_snapshot(&mut self, snapshot: &Snapshot, out: &mut Outcome) {
        let mut type_urls: Vec<String> = self.types.keys().cloned().collect();
        type_urls
            .sort_by(|a, b| crate::type_url::send_order(a).cmp(&crate::type_url::send_order(b)));
        for type_url in type_urls {
            self.respond(&type_url, snapshot, out);
        }
    }

    fn respond(&mut self, type_url: &str, snapshot: &Snapshot, out: &mut Outcome) {
        let Some(subscription) = self.types.get_mut(type_url) else {
            return;
        };
        let typed = snapshot.resources(type_url);
        let (version, selected) = match typed {
            Some(typed) => typed.select(&subscription.names, subscription.wildcard),
            None => (String::new(), Vec::new()),
        };
        let worth_sending = match &subscription.last_sent {
            // A fresh subscription gets an answer once there is something for it, or at once for
            // a wildcard type the snapshot knows (an empty answer ends the node's initial fetch).
            None => !selected.is_empty() || (subscription.wildcard && typed.is_some()),
            // Otherwise only a changed selection is sent: never a version the node has already
            // been sent, which is what keeps a NACKed version from being resent in a loop.
            Some(sent) => sent.version != version,
        };
        if !worth_sending {
            return;
        }
        self.nonces_issued += 1;
        let nonce = format!("{}-{}", self.id, self.nonces_issued);
        let resources: Vec<ResourceVersion> = selected.iter().map(|s| s.to_version()).collect();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: selected.into_iter().map(|s| s.body.clone()).collect(),
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        let sent = XdsEvent::Sent {
            stream: self.id,
            node: self.node.clone(),
            type_url: type_url.to_string(),
            version: version.clone(),
            nonce: nonce.clone(),
            resources: resources.clone(),
        };
        out.responses.push((response, sent));
        subscription.last_sent = Some(SentResponse {
            version,
            nonce,
            resources,
        });
    }
}

fn ack_or_nack(
    stream: StreamId,
    node: &NodeInfo,
    request: &DiscoveryRequest,
    sent: &SentResponse,
) -> XdsEvent {
    match &request.error_detail {
        Some(detail) => XdsEvent::Nack {
            stream,
            node: node.clone(),
            type_url: request.type_url.clone(),
            version: sent.version.clone(),
            nonce: sent.nonce.clone(),
            resources: sent.resources.clone(),
            error: detail.message.clone(),
        },
        None => XdsEvent::Ack {
            stream,
            node: node.clone(),
            type_url: request.type_url.clone(),
            version: request.version_info.clone(),
            nonce: sent.nonce.clone(),
            resources: sent.resources.clone(),
        },
    }
}

#[cfg(test)]
mod tests;
