//! The edge between xDS and the node model: stream events name nodes and resources in the
//! `xds` crate's types; the node model takes its own.

use meshplug_core::nodes::{FilterVersion, NodeIdentity};
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
