use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, route};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager, http_filter,
};
use prost::Message;

use super::*;
use meshplug_core::catalog::{Catalog, ScannedFile, reconcile};
use meshplug_core::compose::plan;

fn catalog() -> Catalog {
    let files = [
        (
            "mesh/backend.yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {name: backend}\nspec:\n  endpoints: [\"127.0.0.1:9000\", \"127.0.0.2:9001\"]\n",
        ),
        (
            "mesh/ingress.yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {name: ingress}\nspec:\n  port: 10000\n  routes:\n    - {prefix: /api, cluster: backend, timeout: 2s}\n    - {directResponse: {status: 404, body: no}}\n",
        ),
        (
            "plugins/authz.yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {name: authz}\nspec:\n  artifact: authz\n  phase: authn\n",
        ),
        (
            "plugins/stats.yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {name: stats}\nspec:\n  artifact: stats\n  phase: stats\n  failurePolicy: failOpen\n",
        ),
    ];
    let scanned: Vec<ScannedFile> = files
        .iter()
        .map(|(file, text)| ScannedFile {
            file: file.to_string(),
            text: text.to_string(),
        })
        .collect();
    let catalog = reconcile(&Catalog::new(), &scanned);
    assert_eq!(catalog.errors().count(), 0, "{:?}", catalog.files);
    catalog
}

fn manager(listener: &Listener) -> HttpConnectionManager {
    let Some(filter::ConfigType::TypedConfig(any)) =
        &listener.filter_chains[0].filters[0].config_type
    else {
        panic!("no HCM");
    };
    HttpConnectionManager::decode(any.value.as_slice()).expect("HCM decodes")
}

#[test]
fn a_listener_takes_routes_from_rds_and_plugins_from_ecds_in_order() {
    let catalog = catalog();
    let served = ["authz", "stats"].iter().map(|s| s.to_string()).collect();
    let resources = resources(&plan(&catalog, &served));
    assert_eq!(resources.listeners.len(), 1);
    let (name, any) = &resources.listeners[0];
    assert_eq!(name, "ingress");
    assert_eq!(any.type_url, xds::type_url::LISTENER);
    let listener = Listener::decode(any.value.as_slice()).expect("listener decodes");
    let hcm = manager(&listener);
    let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
        panic!("not RDS");
    };
    assert_eq!(rds.route_config_name, "ingress");
    let http1 = hcm
        .http_protocol_options
        .as_ref()
        .expect("HTTP/1.1 options");
    assert!(http1.enable_trailers, "filters see HTTP/1.1 trailers");
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["authz", "stats", "envoy.filters.http.router"]);
    let discovery = |i: usize| match &hcm.http_filters[i].config_type {
        Some(http_filter::ConfigType::ConfigDiscovery(source)) => source.clone(),
        other => panic!("not discovered: {other:?}"),
    };
    let closed = discovery(0);
    assert!(
        closed.default_config.is_none(),
        "fail closed has no default"
    );
    assert!(!closed.apply_default_config_without_warming);
    assert!(closed.type_urls.contains(&Wasm::type_url()));
    assert!(closed.type_urls.contains(&DynamicModuleFilter::type_url()));
    let open = discovery(1);
    assert_eq!(
        open.default_config.map(|a| a.type_url),
        Some(HeaderMutation::type_url())
    );
}

#[test]
fn routes_and_clusters_translate() {
    let catalog = catalog();
    let resources = resources(&plan(&catalog, &Default::default()));
    let listener = Listener::decode(resources.listeners[0].1.value.as_slice()).expect("decodes");
    let hcm = manager(&listener);
    assert_eq!(hcm.http_filters.len(), 1, "no plugin served: router only");
    let routes = RouteConfiguration::decode(resources.routes[0].1.value.as_slice()).expect("rds");
    let vhost = &routes.virtual_hosts[0];
    assert_eq!(vhost.domains, ["*"]);
    match &vhost.routes[0].action {
        Some(route::Action::Route(action)) => {
            assert_eq!(action.timeout.as_ref().map(|t| t.seconds), Some(2));
        }
        other => panic!("{other:?}"),
    }
    match &vhost.routes[1].action {
        Some(route::Action::DirectResponse(direct)) => assert_eq!(direct.status, 404),
        other => panic!("{other:?}"),
    }
    let (name, any) = &resources.clusters[0];
    assert_eq!(name, "backend");
    assert_eq!(any.type_url, xds::type_url::CLUSTER);
    let cluster = Cluster::decode(any.value.as_slice()).expect("cds");
    let endpoints = &cluster.load_assignment.expect("endpoints").endpoints[0].lb_endpoints;
    assert_eq!(endpoints.len(), 2);
}

#[test]
fn a_built_in_filter_s_slot_takes_its_own_type_only() {
    let lua = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua";
    let mut scanned: Vec<ScannedFile> = catalog()
        .record()
        .texts
        .into_iter()
        .map(|(file, text)| ScannedFile { file, text })
        .collect();
    scanned.push(ScannedFile {
        file: "plugins/lua.yaml".into(),
        text: format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: lua}}\nspec:\n  \
             phase: authn\n  priority: -1\n  envoyFilter: {{typeUrl: {lua}}}\n"
        ),
    });
    let catalog = reconcile(&Catalog::new(), &scanned);
    assert_eq!(catalog.errors().count(), 0, "{:?}", catalog.files);
    let served = ["lua", "authz"].iter().map(|s| s.to_string()).collect();
    let resources = resources(&plan(&catalog, &served));
    let listener = Listener::decode(resources.listeners[0].1.value.as_slice()).expect("decodes");
    let hcm = manager(&listener);
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["lua", "authz", "envoy.filters.http.router"]);
    let Some(http_filter::ConfigType::ConfigDiscovery(source)) = &hcm.http_filters[0].config_type
    else {
        panic!("not discovered");
    };
    assert_eq!(source.type_urls, [lua]);
}
