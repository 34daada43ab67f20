//! A state-of-the-world Aggregated Discovery Service (ADS) server for Envoy, built on `tonic`
//! and the `envoy-types` protos.
//!
//! What it does:
//! - keeps a [`SnapshotCache`]: one immutable [`Snapshot`] of resources per *group* key, where a
//!   group is whatever the caller maps a node to (one node, a cohort, or the whole fleet);
//! - serves `StreamAggregatedResources`: answers each subscription with the resources it names,
//!   pushes again whenever that node's snapshot changes what it would receive, and never resends
//!   a version the node has NACKed (no NACK loop);
//! - derives every response's `version_info` from the content sent, so republishing identical
//!   resources sends nothing;
//! - reports each stream's life and every response, ACK and NACK as an [`XdsEvent`] to a caller's
//!   [`EventSink`].
//!
//! - serves `DeltaAggregatedResources` (incremental xDS) from the same snapshots: per type it
//!   tracks what the node holds and sends only changed resources and removed names;
//! - refuses a stream whose node is too large, or that a caller's [`NodeAuthorizer`] refuses
//!   for its peer (the certificates the peer presented over TLS, from tonic), with the reason
//!   in the stream's status and an [`XdsEvent::Refused`];
//!
//! What it does not do:
//! - resource TTLs, on-demand (VHDS-style) resource locators, or xdstp:// names;
//! - decide anything about the resources: it knows nothing about plugins, rollouts or health;
//! - hold one type back until the node has ACKed another: it sends changed types in
//!   dependency order (clusters, endpoints, listeners, routes, filter configurations) and
//!   leaves the rest to Envoy's warming.

mod cache;
mod delta;
mod error;
mod events;
mod grpc;
mod server;
mod snapshot;
mod stream;

pub use cache::SnapshotCache;
pub use error::XdsError;
pub use events::{EventSink, NodeInfo, RefusalCause, StreamId, XdsEvent};
pub use grpc::AdsService;
pub use server::{
    AdsServer, DEFAULT_MAX_NODE_BYTES, DeltaResponseStream, NodeAuthorizer, NodeGrouper, PeerCerts,
    ResponseStream,
};
pub use snapshot::{PreparedResource, ResourceVersion, Selected, Snapshot, TypedResources};

/// The protobuf types this crate speaks, re-exported so callers need not depend on `envoy-types`
/// for the basics.
pub mod proto {
    pub use envoy_types::pb::envoy::config::core::v3::Node;
    pub use envoy_types::pb::envoy::service::discovery::v3::{
        DiscoveryRequest, DiscoveryResponse,
        aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
    };
    pub use envoy_types::pb::google::protobuf::Any;
    pub use envoy_types::pb::google::rpc::Status as RpcStatus;
}

/// Well-known xDS type URLs.
pub mod type_url {
    /// ECDS: a filter's configuration, discovered by name.
    pub const EXTENSION_CONFIG: &str =
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
    /// LDS.
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    /// RDS.
    pub const ROUTE_CONFIGURATION: &str =
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    /// CDS.
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    /// EDS.
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

    /// The order in which changed types are sent: clusters before the listeners whose routes
    /// use them, listeners before their routes, filter configurations last (Envoy asks for
    /// those once a listener names them). Unknown types go last, by name.
    pub fn send_order(type_url: &str) -> (u8, &str) {
        let rank = match type_url {
            CLUSTER => 0,
            ENDPOINT => 1,
            LISTENER => 2,
            ROUTE_CONFIGURATION => 3,
            EXTENSION_CONFIG => 4,
            _ => 5,
        };
        (rank, type_url)
    }
}
