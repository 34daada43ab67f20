//! Bad artifacts and a bad configuration dropped into the watched folder are refused by the
//! pre-flight: zero pushes, Envoy's config version unchanged, the previous build still serving,
//! and each refusal reported in the control plane's log and status.

use std::path::PathBuf;
use std::time::Duration;

use e2e::paths::{filter_artifact, repo_root};
use e2e::{Mesh, eventually};
use meshplug::store::sha256_hex;
use meshplug_preflight::testing::proxy_wasm_wat;

fn wasm(vm_start: &str, configure: &str, request_headers: &str, extra: &str) -> Vec<u8> {
    wat::parse_str(proxy_wasm_wat(vm_start, configure, request_headers, extra)).expect("WAT")
}

fn shipped(file: &str) -> Vec<u8> {
    let path: PathBuf = repo_root().join("filters/authz/preflight").join(file);
    std::fs::read(&path).expect("shipped pre-flight file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_artifacts_never_reach_envoy() {
    let build_a =
        std::fs::read(filter_artifact("test/authz-a.wasm").expect("built")).expect("read");
    let mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish("authz.schema.json", &shipped("config.schema.json"))
        .expect("schema");
    mesh.publish("authz.fixtures.json", &shipped("fixtures.json"))
        .expect("fixtures");
    mesh.publish_authz_config().expect("config");
    mesh.publish("authz.wasm", &build_a).expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    let envoy = &mesh.envoys[0];
    let version_stat = "extension_config_discovery.http_filter.authz.version_text";
    let version_before = envoy.stats().await.expect("stats")[version_stat].clone();

    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated build",
            build_a[..build_a.len() / 3].to_vec(),
            "truncated Wasm",
        ),
        (
            "not Wasm",
            b"#!/bin/sh\necho not a filter\n".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "corrupt module",
            b"\0asm\x01\0\0\0\x01\x03\xff\xff\xff".to_vec(),
            "not a valid Wasm module",
        ),
        (
            "unknown import",
            wasm(
                "(i32.const 1)",
                "(i32.const 1)",
                "(i32.const 0)",
                r#"(import "env" "proxy_open_door" (func))"#,
            ),
            "which Envoy does not provide",
        ),
        (
            "loop on requests",
            wasm(
                "(i32.const 1)",
                "(i32.const 1)",
                "(loop $l (br $l)) (i32.const 0)",
                "",
            ),
            "did not finish within",
        ),
        (
            "panic on requests",
            wasm("(i32.const 1)", "(i32.const 1)", "unreachable", ""),
            "proxy_on_request_headers trapped",
        ),
    ];
    for (row, bytes, needle) in &rows {
        let sha = sha256_hex(bytes);
        mesh.publish("authz.wasm", bytes).expect("publish bad");
        let reason = mesh.wait_for_rejection("authz", &sha, row).await;
        assert!(
            reason.contains(needle),
            "{row}: {reason} should contain {needle}"
        );
    }

    mesh.publish("authz.json", br#"{"api_keys": "test-key-1"}"#)
        .expect("bad config");
    eventually(
        Duration::from_secs(30),
        "the bad config to be refused",
        || async {
            let plugin = mesh
                .control_plane
                .plugin("authz")
                .await
                .map_err(|e| e.to_string())?;
            match plugin["last_rejection"]["reason"].as_str() {
                Some(r) if r.contains("configuration invalid at /api_keys") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    mesh.wait_until_served_by(0, "authz/a").await;
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["publishes"], 1,
        "only build A was ever published: {plugin}"
    );
    assert!(
        plugin["config_json"]
            .as_str()
            .is_some_and(|c| c.contains("[\"test-key-1\"]"))
    );
    let on_node = mesh
        .control_plane
        .filter_on_node("envoy-1", "authz")
        .await
        .expect("node");
    assert_eq!(on_node["sends"], 1, "{on_node}");
    let version_after = envoy.stats().await.expect("stats")[version_stat].clone();
    assert_eq!(
        version_after, version_before,
        "Envoy's config version did not move"
    );
    let logged = mesh.control_plane.log_records("rejected").len();
    assert_eq!(logged, rows.len() + 1, "every refusal is in the log");
}
