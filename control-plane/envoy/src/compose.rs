//! A [`MeshPlan`] as Envoy resources: LDS listeners whose HTTP connection manager takes its
//! routes from RDS and each plugin from ECDS (`config_discovery`), RDS route configurations,
//! and CDS clusters with static endpoints. Pure.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, DataSource, Http1ProtocolOptions, data_source,
};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, ExtensionConfigSource, SocketAddress,
    address, config_source, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route,
    route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::HeaderMutation;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use prost::Name;
use xds::proto::Any;

use crate::ecds::{DynamicModuleFilter, to_any};
use meshplug_core::compose::{ChainEntry, ListenerPlan, MeshPlan};
use meshplug_core::manifest::{ClusterSpec, FailurePolicy, Named, RouteSpec};

/// The Envoy resources of a plan, each with its name, sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeshResources {
    /// LDS.
    pub listeners: Vec<(String, Any)>,
    /// RDS, one per listener, named after it.
    pub routes: Vec<(String, Any)>,
    /// CDS.
    pub clusters: Vec<(String, Any)>,
}

/// Translates a plan.
pub fn resources(plan: &MeshPlan<'_>) -> MeshResources {
    MeshResources {
        listeners: plan
            .listeners
            .iter()
            .map(|l| (l.name.to_string(), to_any(&listener(l))))
            .collect(),
        routes: plan
            .listeners
            .iter()
            .map(|l| (l.name.to_string(), to_any(&route_configuration(l))))
            .collect(),
        clusters: plan
            .clusters
            .iter()
            .map(|c| (c.name.clone(), to_any(&cluster(c))))
            .collect(),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

fn socket(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

fn listener(plan: &ListenerPlan<'_>) -> Listener {
    let mut http_filters: Vec<HttpFilter> = plan.chain.iter().map(discovered_filter).collect();
    http_filters.push(HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(to_any(
            &Router::default(),
        ))),
        ..Default::default()
    });
    let manager = HttpConnectionManager {
        stat_prefix: plan.name.to_string(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: plan.name.to_string(),
        })),
        http_filters,
        // Filters see HTTP/1.1 trailers too (Envoy drops them by default).
        http_protocol_options: Some(Http1ProtocolOptions {
            enable_trailers: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    Listener {
        name: plan.name.to_string(),
        address: Some(socket(&plan.spec.address, plan.spec.port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(to_any(&manager))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A plugin's place in the chain: its configuration comes from ECDS under its name. With no
/// default, Envoy warms a new listener until the configuration arrives. A fail-open plugin
/// gets a do-nothing default, used if its configuration is ever missing; a fail-closed one
/// has none, so requests fail (500) rather than skip it.
fn discovered_filter(entry: &ChainEntry) -> HttpFilter {
    // A built-in filter's slot takes its own type only; a build's, either kind of build.
    let mut type_urls = match &entry.builtin_type {
        Some(type_url) => vec![type_url.clone()],
        None => vec![Wasm::type_url(), DynamicModuleFilter::type_url()],
    };
    let default_config = match entry.failure_policy {
        FailurePolicy::FailOpen => {
            type_urls.push(HeaderMutation::type_url());
            Some(to_any(&HeaderMutation::default()))
        }
        FailurePolicy::FailClosed | FailurePolicy::Reload => None,
    };
    HttpFilter {
        name: entry.name.clone(),
        config_type: Some(http_filter::ConfigType::ConfigDiscovery(
            ExtensionConfigSource {
                config_source: Some(ads()),
                default_config,
                apply_default_config_without_warming: false,
                type_urls,
            },
        )),
        ..Default::default()
    }
}

fn route_configuration(plan: &ListenerPlan<'_>) -> RouteConfiguration {
    RouteConfiguration {
        name: plan.name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: plan.name.to_string(),
            domains: vec!["*".into()],
            routes: plan.spec.routes.iter().map(route).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn route(spec: &RouteSpec) -> Route {
    let action = match (&spec.cluster, &spec.direct_response) {
        (Some(cluster), _) => route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.clone())),
            timeout: spec.timeout.map(duration),
            ..Default::default()
        }),
        (None, Some(direct)) => route::Action::DirectResponse(DirectResponseAction {
            status: u32::from(direct.status),
            body: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString(direct.body.clone())),
                ..Default::default()
            }),
            body_format: None,
        }),
        // The manifest check refuses a route with neither.
        (None, None) => route::Action::DirectResponse(DirectResponseAction {
            status: 404,
            body: None,
            body_format: None,
        }),
    };
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(spec.prefix.clone())),
            ..Default::default()
        }),
        action: Some(action),
        ..Default::default()
    }
}

fn cluster(named: &Named<ClusterSpec>) -> Cluster {
    let endpoints = named
        .spec
        .addresses()
        .into_iter()
        .map(|addr| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(socket(&addr.ip().to_string(), addr.port())),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    Cluster {
        name: named.name.clone(),
        connect_timeout: Some(duration(named.spec.connect_timeout)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: named.name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn duration(d: std::time::Duration) -> envoy_types::pb::google::protobuf::Duration {
    envoy_types::pb::google::protobuf::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
