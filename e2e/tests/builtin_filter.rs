//! A built-in Envoy filter in the chain: a Lua filter (`spec.envoyFilter`) placed before a Wasm
//! plugin sets dynamic metadata that the Wasm plugin reads. The Wasm plugin is the public SDK's
//! `envoy_filter_metadata` example (`../shared/compat/`): with request header
//! `x-custom-metadata`, the Lua filter stores it upper-cased under `envoy.filters.http.lua` /
//! `uppercased-custom-metadata`, and the example answers 200 itself with that value; without
//! it, the request passes. An edit of the Lua code is a new version that reaches the proxy; a
//! Lua script that does not compile is refused by Envoy's own validation before any push, and
//! the version in force keeps serving.

use std::time::Duration;

use e2e::compat::lua_metadata_plugin;
use e2e::composed::Ads;
use e2e::paths::compat_module;
use e2e::upstream::UPSTREAM_BODY;
use e2e::{Mesh, eventually};

const METADATA_PLUGIN: &str = "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\n\
    metadata: {name: metadata}\nspec:\n  artifact: envoy_filter_metadata\n  phase: authz\n  \
    rollout: immediate\n";

async fn wait_for_answer(mesh: &Mesh, header: Option<&str>, want_body: &str) {
    eventually(Duration::from_secs(30), want_body, || async {
        let headers: Vec<(&str, &str)> = header
            .map(|v| ("x-custom-metadata", v))
            .into_iter()
            .collect();
        let answer = mesh
            .get(0, "/", &headers)
            .await
            .map_err(|e| e.to_string())?;
        match answer.body == want_body && answer.status == 200 {
            true => Ok(()),
            false => Err(format!(
                "{} {:?} {:?}",
                answer.status, answer.headers, answer.body
            )),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lua_filter_before_a_wasm_plugin_sets_the_metadata_it_reads() {
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    let module = compat_module("envoy_filter_metadata.wasm").expect("corpus");
    mesh.publish_copy(&module, "envoy_filter_metadata.wasm")
        .expect("build");
    mesh.write_manifest("plugins", "lua.yaml", &lua_metadata_plugin("string.upper"))
        .expect("lua");
    mesh.write_manifest("plugins", "metadata.yaml", METADATA_PLUGIN)
        .expect("plugin");
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy");
    mesh.wait_for_chain(0, &["lua", "metadata"]).await;

    wait_for_answer(
        &mesh,
        Some("hello"),
        "Custom response with Envoy metadata: \"HELLO\"\n",
    )
    .await;
    let answer = mesh
        .get(0, "/", &[("x-custom-metadata", "hello")])
        .await
        .expect("get");
    assert_eq!(answer.header("uppercased-metadata"), Some("HELLO"));
    assert_eq!(answer.header("powered-by"), Some("proxy-wasm"));
    wait_for_answer(&mesh, None, UPSTREAM_BODY).await;

    // An edit of the built-in filter is a new version, served like any other.
    let before = mesh.control_plane.plugin("lua").await.expect("plugin");
    mesh.write_manifest("plugins", "lua.yaml", &lua_metadata_plugin("string.lower"))
        .expect("edit");
    wait_for_answer(
        &mesh,
        Some("HeLLo"),
        "Custom response with Envoy metadata: \"hello\"\n",
    )
    .await;
    let after = mesh.control_plane.plugin("lua").await.expect("plugin");
    assert_ne!(
        before["resource_version"], after["resource_version"],
        "a new version"
    );
    assert!(after["resource_version"].is_string(), "{after}");

    // A script that does not compile is refused by Envoy's validation, before any push.
    let broken = lua_metadata_plugin("string.lower").replace("if value then", "if value then (");
    mesh.write_manifest("plugins", "lua.yaml", &broken)
        .expect("broken");
    let reason = mesh
        .wait_for_plugin(
            "lua",
            "the broken script to be refused",
            Duration::from_secs(30),
            |p| match p["last_rejection"]["reason"].as_str() {
                Some(reason) if reason.contains("script load error") => Ok(reason.to_string()),
                _ => Err(format!("{}", p["last_rejection"])),
            },
        )
        .await;
    assert!(
        reason.starts_with("Envoy refuses the built-in filter"),
        "{reason}"
    );
    wait_for_answer(
        &mesh,
        Some("StillLower"),
        "Custom response with Envoy metadata: \"stilllower\"\n",
    )
    .await;
    assert!(mesh.envoys[0].process().is_running());
}
