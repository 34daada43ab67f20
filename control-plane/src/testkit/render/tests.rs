use super::*;

const USER: &str = r#"
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: backend}}]}]}
          http_filters:
          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '{"api_keys": ["k1"]}'}
                vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: /opt/authz.wasm}}}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: backend
    type: STRICT_DNS
    load_assignment: {cluster_name: backend, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: backend.internal, port_value: 443}}}}]}]}
    transport_socket: {name: envoy.transport_sockets.tls}
admin:
  address: {socket_address: {address: 0.0.0.0, port_value: 9901}}
"#;

fn inputs<'a>(
    filters: &'a BTreeSet<String>,
    fakes: &'a BTreeMap<String, SocketAddr>,
) -> RenderInputs<'a> {
    RenderInputs {
        filters,
        fakes,
        xds: "127.0.0.1:18000".parse().expect("addr"),
        node_id: "meshplug-test-1",
    }
}

fn user() -> Value {
    serde_norway::from_str(USER).expect("yaml")
}

#[test]
fn a_named_filter_becomes_an_ecds_slot_and_the_rest_stays() {
    let filters = BTreeSet::from(["authz".to_string()]);
    let fakes = BTreeMap::from([("backend".to_string(), "127.0.0.1:4000".parse().expect("a"))]);
    let rendered = render(&user(), &inputs(&filters, &fakes)).expect("renders");
    assert_eq!(rendered.filter_configs["authz"], r#"{"api_keys": ["k1"]}"#);
    let text = serde_norway::to_string(&rendered.config).expect("yaml");
    let config = &rendered.config;
    let listener = &config["static_resources"]["listeners"][0];
    assert_eq!(
        listener["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
    assert_eq!(listener["address"]["socket_address"]["port_value"], 0);
    let chain = &listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    assert_eq!(chain[0]["name"], "envoy.filters.http.cors", "{text}");
    assert_eq!(chain[1]["name"], "authz");
    assert!(
        chain[1]["config_discovery"]["config_source"]["ads"].is_mapping(),
        "{text}"
    );
    assert!(chain[1]["typed_config"].is_null(), "{text}");
    assert_eq!(chain[2]["name"], "envoy.filters.http.router");
    let backend = &config["static_resources"]["clusters"][0];
    assert_eq!(backend["type"], "STATIC");
    assert!(backend["transport_socket"].is_null());
    let endpoint = &backend["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    assert_eq!(endpoint["address"]["socket_address"]["port_value"], 4000);
    assert_eq!(
        config["static_resources"]["clusters"][1]["name"],
        XDS_CLUSTER
    );
    assert_eq!(
        config["admin"]["address"]["socket_address"]["port_value"],
        0
    );
    assert_eq!(config["node"]["id"], "meshplug-test-1");
    assert!(config["dynamic_resources"]["ads_config"].is_mapping());
}

#[test]
fn what_cannot_be_tested_this_way_is_said() {
    let fakes = BTreeMap::new();
    let unknown = BTreeSet::from(["ratelimit".to_string()]);
    let err = render(&user(), &inputs(&unknown, &fakes)).expect_err("refused");
    assert!(err.contains("\"ratelimit\""), "{err}");
    let filters = BTreeSet::new();
    let fake = BTreeMap::from([("payments".to_string(), "127.0.0.1:1".parse().expect("a"))]);
    let err = render(&user(), &inputs(&filters, &fake)).expect_err("refused");
    assert!(err.contains("\"payments\""), "{err}");
    let mut dynamic = user();
    dynamic
        .as_mapping_mut()
        .expect("map")
        .insert("dynamic_resources".into(), Value::Mapping(Mapping::new()));
    let err = render(&dynamic, &inputs(&filters, &fakes)).expect_err("refused");
    assert!(err.contains("dynamic_resources"), "{err}");
}
