//! `meshplug status -o json` (and the table) shows both proxies with the sha each one ACKed and
//! its state; after Envoy NACKs a version, it shows the NACK message. `meshplug plugins` shows
//! the artifact. Runs with `--no-preflight` so that a module Envoy refuses reaches it.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};
use meshplug::store::sha256_hex;
use serde_json::Value;

/// Wasm header, then a type section of three bytes that are not a valid type vector.
const INVALID_MODULE: &[u8] = b"\0asm\x01\0\0\0\x01\x03\xff\xff\xff";

fn filter<'a>(status: &'a Value, node: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == node))
        .map_or(&Value::Null, |n| &n["filters"]["authz"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_proxy_its_sha_and_the_nack() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let sha_a = sha256_hex(&std::fs::read(&build_a).expect("read"));
    let mut mesh = Mesh::start_with(&["--no-preflight"])
        .await
        .expect("mesh starts");
    mesh.add_envoy("envoy-2", "edge")
        .await
        .expect("second envoy");
    mesh.publish_authz_config().expect("config");
    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_acked("envoy-1", "authz", &sha_a).await;
    mesh.wait_until_acked("envoy-2", "authz", &sha_a).await;

    let status: Value =
        serde_json::from_str(&mesh.control_plane.cli(&["status", "-o", "json"])).expect("json");
    for node in ["envoy-1", "envoy-2"] {
        let authz = filter(&status, node);
        assert!(
            authz["acked"]
                .as_str()
                .is_some_and(|v| v.starts_with(&sha_a)),
            "{status}"
        );
        assert_eq!(authz["acked"], authz["desired"], "{status}");
    }
    // Applied: Envoy's config_reload for the filter, streamed with its stats, followed the ACK.
    let table = eventually(
        Duration::from_secs(15),
        "both proxies to report applied",
        || async {
            let out = mesh.control_plane.cli(&["status", "-o", "json"]);
            let status: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let applied = ["envoy-1", "envoy-2"].iter().all(|node| {
                let authz = filter(&status, node);
                authz["applied"].is_string() && authz["applied"] == authz["acked"]
            });
            if applied {
                Ok(mesh.control_plane.cli(&["status"]))
            } else {
                Err(out)
            }
        },
    )
    .await;
    assert_eq!(
        table
            .lines()
            .filter(|l| l.ends_with("SYNCED") && l.contains(" yes "))
            .count(),
        2,
        "{table}"
    );
    let plugins = mesh.control_plane.cli(&["plugins"]);
    assert!(
        plugins.contains(&sha_a[..12]) && plugins.contains("wasm"),
        "{plugins}"
    );

    mesh.publish("authz.wasm", INVALID_MODULE)
        .expect("publish bad");
    let status = eventually(Duration::from_secs(20), "the NACK in status", || async {
        let out = mesh.control_plane.cli(&["status", "-o", "json"]);
        let status: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        let nacked = ["envoy-1", "envoy-2"]
            .iter()
            .any(|node| filter(&status, node)["last_nack"]["error"].is_string());
        if nacked { Ok(status) } else { Err(out) }
    })
    .await;
    let error = ["envoy-1", "envoy-2"]
        .iter()
        .find_map(|node| filter(&status, node)["last_nack"]["error"].as_str())
        .expect("a NACK message");
    assert!(error.contains("Wasm"), "Envoy's own words: {error}");
    let table = mesh.control_plane.cli(&["status"]);
    assert!(table.contains("last NACK: "), "{table}");
}
