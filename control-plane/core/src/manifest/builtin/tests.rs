use crate::manifest::{Manifest, parse};

fn builtin(body: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: lua}}\nspec:\n  \
         phase: authn\n{body}"
    )
}

const LUA: &str = "  envoyFilter:\n    typeUrl: \
    type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n    config:\n      \
    default_source_code: {inline_string: \"function envoy_on_request(h) end\"}\n";

#[test]
fn a_built_in_filter_parses_and_carries_its_typed_config() {
    let Manifest::Plugin(plugin) = parse("plugins/lua.yaml", &builtin(LUA)).expect("parses") else {
        panic!("not a plugin");
    };
    let filter = plugin.spec.envoy_filter.as_ref().expect("built-in");
    let typed: serde_json::Value = serde_json::from_str(&filter.typed_config_json()).expect("JSON");
    assert_eq!(
        typed["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
    );
    assert_eq!(
        typed["default_source_code"]["inline_string"],
        "function envoy_on_request(h) end"
    );
    assert!(plugin.spec.artifact.is_empty());
}

#[test]
fn a_built_in_filter_is_refused_naming_the_field() {
    let cases: [(&str, String, &str, &str); 6] = [
        (
            "with an artifact",
            builtin(&format!("  artifact: authz\n{LUA}")),
            "spec.artifact",
            "is for a build",
        ),
        (
            "with a build's config",
            builtin(&format!("  config: {{a: 1}}\n{LUA}")),
            "spec.config",
            "envoyFilter.config",
        ),
        (
            "not an HTTP filter type",
            builtin(
                "  envoyFilter: {typeUrl: type.googleapis.com/envoy.config.cluster.v3.Cluster}\n",
            ),
            "spec.envoyFilter.typeUrl",
            "not an Envoy HTTP filter type",
        ),
        (
            "a Wasm filter",
            builtin(
                "  envoyFilter: {typeUrl: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm}\n",
            ),
            "spec.envoyFilter.typeUrl",
            "give `artifact`",
        ),
        (
            "the router",
            builtin(
                "  envoyFilter: {typeUrl: type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n",
            ),
            "spec.envoyFilter.typeUrl",
            "router",
        ),
        (
            "a config that is not a mapping",
            builtin(
                "  envoyFilter:\n    typeUrl: type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n    config: [1]\n",
            ),
            "spec.envoyFilter.config",
            "must be a mapping",
        ),
    ];
    for (what, text, field, message) in cases {
        let err = parse("plugins/lua.yaml", &text).expect_err(what);
        assert_eq!(err.field, field, "{what}: {err}");
        assert!(err.message.contains(message), "{what}: {err}");
        assert!(err.line.is_some(), "{what}: {err}");
    }
}

#[test]
fn neither_artifact_nor_built_in_is_refused() {
    let err = parse("plugins/lua.yaml", &builtin("")).expect_err("refused");
    assert_eq!(err.field, "spec");
    assert!(err.message.contains("envoyFilter"), "{err}");
}
