//! The user's Envoy configuration, changed as little as `meshplug test` needs. Pure: YAML in,
//! YAML out.
//!
//! - each HTTP filter named on the command line becomes an ECDS slot of the same name, served
//!   by the in-process control plane over ADS (its inline configuration, if any, is kept as the
//!   filter's starting configuration);
//! - every listener and the admin move to `127.0.0.1`, port 0 (the real ports are read back
//!   from Envoy's admin);
//! - each cluster the cases fake gets one endpoint, the fake on loopback, and no TLS;
//! - a static cluster `meshplug_xds` and `dynamic_resources.ads_config` point at the control
//!   plane; the node id is the test's own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde_norway::{Mapping, Value};

/// The Wasm filter's type.
const WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// The dynamic-module filter's type.
const MODULE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";
/// The cluster the ADS stream uses.
pub const XDS_CLUSTER: &str = "meshplug_xds";

/// What rendering needs besides the configuration.
#[derive(Debug, Clone)]
pub struct RenderInputs<'a> {
    /// The filters to serve from the control plane, by name.
    pub filters: &'a BTreeSet<String>,
    /// The clusters answered by fakes, and where each fake listens.
    pub fakes: &'a BTreeMap<String, SocketAddr>,
    /// The control plane's ADS address.
    pub xds: SocketAddr,
    /// The node id Envoy presents.
    pub node_id: &'a str,
}

/// The rendered configuration, and each replaced filter's inline configuration (the text of
/// its `StringValue`), when it had one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub config: Value,
    pub filter_configs: BTreeMap<String, String>,
}

/// Renders `config`; the error says what in it cannot be tested this way.
pub fn render(config: &Value, inputs: &RenderInputs<'_>) -> Result<Rendered, String> {
    let mut config = config.clone();
    let root = config
        .as_mapping_mut()
        .ok_or("the Envoy configuration is not a YAML mapping")?;
    if root.contains_key("dynamic_resources") {
        return Err(
            "meshplug test needs static listeners and clusters: the configuration \
                    has dynamic_resources"
                .into(),
        );
    }
    root.insert(
        "admin".into(),
        yaml("address: {socket_address: {address: 127.0.0.1, port_value: 0}}"),
    );
    root.insert(
        "node".into(),
        yaml(&format!(
            "{{id: {:?}, cluster: meshplug-test}}",
            inputs.node_id
        )),
    );
    root.insert(
        "dynamic_resources".into(),
        yaml(&format!(
            "ads_config: {{api_type: GRPC, transport_api_version: V3, \
             grpc_services: [{{envoy_grpc: {{cluster_name: {XDS_CLUSTER}}}}}]}}"
        )),
    );
    let statics = root
        .get_mut("static_resources")
        .and_then(Value::as_mapping_mut)
        .ok_or("the configuration has no static_resources")?;
    let found = slot_listeners(statics, inputs.filters)?;
    fake_clusters(statics, inputs.fakes)?;
    add_xds_cluster(statics, inputs.xds);
    let filter_configs = found
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    Ok(Rendered {
        config,
        filter_configs,
    })
}

/// Moves every listener to loopback and turns the named filters into ECDS slots; each found
/// with its inline configuration. A name no listener has is the error.
fn slot_listeners(
    statics: &mut Mapping,
    filters: &BTreeSet<String>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut found = BTreeMap::new();
    for listener in sequence(statics, "listeners") {
        loopback(listener.get_mut("address"));
        for chain in sequence(listener, "filter_chains") {
            for network in sequence(chain, "filters") {
                slot_filters(network, filters, &mut found);
            }
        }
    }
    match filters.iter().find(|f| !found.contains_key(*f)) {
        Some(missing) => Err(format!(
            "no listener's http_filters has a filter named {missing:?}"
        )),
        None => Ok(found),
    }
}

/// The static cluster the ADS stream goes over, to the control plane at `xds`.
fn add_xds_cluster(statics: &mut Mapping, xds: SocketAddr) {
    let clusters = statics
        .entry("clusters".into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if let Some(clusters) = clusters.as_sequence_mut() {
        clusters.push(yaml(&format!(
            "{{name: {XDS_CLUSTER}, type: STATIC, connect_timeout: 1s, \
             typed_extension_protocol_options: {{envoy.extensions.upstreams.http.v3.HttpProtocolOptions: \
             {{\"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, \
             explicit_http_config: {{http2_protocol_options: {{}}}}}}}}, \
             load_assignment: {{cluster_name: {XDS_CLUSTER}, endpoints: [{{lb_endpoints: [{{endpoint: \
             {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}}}]}}]}}}}",
            xds.ip(),
            xds.port()
        )));
    }
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or(Value::Null)
}

/// The items of `map[key]` when it is a sequence of mappings.
fn sequence<'a>(map: &'a mut Mapping, key: &str) -> impl Iterator<Item = &'a mut Mapping> {
    map.get_mut(key)
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_mapping_mut)
}

/// Moves a `socket_address` to 127.0.0.1, port 0.
fn loopback(address: Option<&mut Value>) {
    let socket = address
        .and_then(Value::as_mapping_mut)
        .and_then(|a| a.get_mut("socket_address"))
        .and_then(Value::as_mapping_mut);
    if let Some(socket) = socket {
        socket.insert("address".into(), "127.0.0.1".into());
        socket.insert("port_value".into(), 0.into());
    }
}

/// In an HTTP connection manager, turns each filter in `filters` into an ECDS slot; records
/// each found with its inline configuration text.
fn slot_filters(
    network: &mut Mapping,
    filters: &BTreeSet<String>,
    found: &mut BTreeMap<String, Option<String>>,
) {
    let Some(hcm) = network
        .get_mut("typed_config")
        .and_then(Value::as_mapping_mut)
    else {
        return;
    };
    for filter in sequence(hcm, "http_filters") {
        let Some(name) = filter
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        if !filters.contains(&name) {
            continue;
        }
        let inline = inline_config(filter);
        found.entry(name.clone()).or_insert(inline);
        filter.clear();
        filter.insert("name".into(), name.into());
        filter.insert(
            "config_discovery".into(),
            yaml(&format!(
                "{{config_source: {{ads: {{}}, resource_api_version: V3, initial_fetch_timeout: 10s}}, \
                 type_urls: [{WASM}, {MODULE}]}}"
            )),
        );
    }
}

/// The `StringValue` text a Wasm filter's `config.configuration` or a dynamic module's
/// `filter_config` holds.
fn inline_config(filter: &Mapping) -> Option<String> {
    let typed = filter.get("typed_config")?.as_mapping()?;
    let any = match typed.get("@type").and_then(Value::as_str) {
        Some(WASM) => typed.get("config")?.get("configuration")?,
        Some(MODULE) => typed.get("filter_config")?,
        _ => return None,
    };
    any.get("value")?.as_str().map(str::to_string)
}

/// Points each faked cluster at its fake: one loopback endpoint, plain text.
fn fake_clusters(
    statics: &mut Mapping,
    fakes: &BTreeMap<String, SocketAddr>,
) -> Result<(), String> {
    let mut faked = BTreeSet::new();
    for cluster in sequence(statics, "clusters") {
        let Some(name) = cluster
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let Some(addr) = fakes.get(&name) else {
            continue;
        };
        cluster.remove("transport_socket");
        cluster.insert("type".into(), "STATIC".into());
        cluster.insert(
            "load_assignment".into(),
            yaml(&format!(
                "{{cluster_name: {name:?}, endpoints: [{{lb_endpoints: [{{endpoint: {{address: \
                 {{socket_address: {{address: {}, port_value: {}}}}}}}}}]}}]}}",
                addr.ip(),
                addr.port()
            )),
        );
        faked.insert(name);
    }
    match fakes.keys().find(|name| !faked.contains(*name)) {
        Some(missing) => Err(format!(
            "the cases fake cluster {missing:?}, which the configuration does not declare"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
