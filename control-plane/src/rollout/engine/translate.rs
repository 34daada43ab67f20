//! The edge between xDS and the node model: stream events name nodes and resources in the
//! `xds` crate's types; the node model takes its own.

use meshplug_core::nodes::{FETCH_FAILED_PREFIX, FilterVersion, NodeEvent, NodeIdentity};
use xds::{NodeInfo, ResourceVersion};

/// What a proxy said about itself.
pub(super) fn identity(node: &NodeInfo) -> NodeIdentity {
    NodeIdentity {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        envoy_version: node.user_agent_version.clone(),
        metadata: node.metadata.clone(),
    }
}

/// The filter resources an event names.
pub(super) fn filters(resources: &[ResourceVersion]) -> Vec<FilterVersion> {
    resources
        .iter()
        .map(|r| FilterVersion {
            name: r.name.clone(),
            version: r.version.clone(),
        })
        .collect()
}

/// A refusal of a response carrying `resources`: the agent's fetch failure when its message
/// says so (the prefix only `meshplug agent` writes), otherwise Envoy's NACK.
pub(super) fn refusal(resources: &[ResourceVersion], error: &str) -> NodeEvent {
    match error.strip_prefix(FETCH_FAILED_PREFIX) {
        Some(reason) => NodeEvent::FetchFailed(filters(resources), reason.into()),
        None => NodeEvent::Nacked(filters(resources), error.into()),
    }
}
