use super::*;

#[test]
fn envoy_s_reason_names_the_manifest_field() {
    let log = "[2026-12-07][1][critical][main] [source/server/config_validation/server.cc:76] \
        error initializing configuration '/tmp/x/validate.yaml': Protobuf message (type \
        envoy.config.bootstrap.v3.Bootstrap reason INVALID_ARGUMENT: invalid JSON in \
        envoy.config.bootstrap.v3.Bootstrap @ static_resources.listeners[0].filter_chains[0].\
        filters[0].typed_config.<any>.http_filters[0].typed_config.<any>.default_source_code: \
        message envoy.config.core.v3.DataSource, near 1:357 (offset 356): no such field: \
        'inline_strin') has unknown fields";
    let reason = reason(log);
    assert!(
        reason.contains("spec.envoyFilter.config.default_source_code")
            && reason.contains("no such field: 'inline_strin'")
            && !reason.contains("validate.yaml"),
        "{reason}"
    );
}

#[test]
fn the_bootstrap_is_json_with_the_filter_then_the_router() {
    let text = bootstrap_for("lua \"x\"", r#"{"@type": "t", "a": 1}"#);
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let hcm = &parsed["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["http_filters"][0]["name"], "lua \"x\"");
    assert_eq!(hcm["http_filters"][0]["typed_config"]["a"], 1);
    assert_eq!(hcm["http_filters"][1]["name"], "envoy.filters.http.router");
}

/// With the pinned Envoy (`MESHPLUG_ENVOY`, as `make test` sets it): a good Lua filter passes,
/// a typo and a script that does not compile are refused with Envoy's reason.
#[test]
fn envoy_validates_a_lua_filter_when_it_is_there() {
    let Some(envoy) = std::env::var_os("MESHPLUG_ENVOY").map(PathBuf::from) else {
        eprintln!("MESHPLUG_ENVOY not set: skipped (make test sets it)");
        return;
    };
    let lua = |source: &str| {
        serde_json::json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": source},
        })
        .to_string()
    };
    let run = |json: &str| validate(&envoy, "lua", json).expect("Envoy runs");
    run(&lua("function envoy_on_request(h) end")).expect("valid");
    let broken = run(&lua("function envoy_on_request(h) h:x( end")).expect_err("does not compile");
    assert!(broken.contains("script load error"), "{broken}");
    let typo = r#"{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                   "default_source_cod": {}}"#;
    let refused = run(typo).expect_err("unknown field");
    assert!(
        refused.contains("default_source_cod") && refused.starts_with("Envoy refuses"),
        "{refused}"
    );
}
