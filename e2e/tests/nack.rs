//! A file that is framed like Wasm but is not a valid module reaches Envoy, which NACKs it. The
//! control plane records the NACK with Envoy's `error_detail`, Envoy keeps serving the previous
//! filter, the rollout puts the last good version back into the node's snapshot (one more send,
//! which Envoy ACKs without rebuilding anything), quarantines the bad sha, and nothing is
//! resent in a loop.
//!
//! The pre-flight would refuse this module before any push (see `preflight_reject`), so this
//! scenario runs the control plane with `--no-preflight`: it is how meshplug behaves when Envoy
//! rejects something the pre-flight passed (a version skew, a Envoy limit it does not model).

use std::time::Duration;

use e2e::Mesh;
use e2e::paths::filter_artifact;

/// Wasm header, then a type section (id 1) of three bytes that are not a valid type vector.
const INVALID_MODULE: &[u8] = b"\0asm\x01\0\0\0\x01\x03\xff\xff\xff";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_module_is_recorded_and_not_resent() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let mesh = Mesh::start_with(&["--no-preflight"])
        .await
        .expect("mesh starts");
    mesh.publish_authz_config().expect("config");
    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;

    mesh.publish("authz.wasm", INVALID_MODULE)
        .expect("publish bad");
    let nack = mesh
        .wait_for_filter(
            ("envoy-1", "authz"),
            "the NACK to be recorded",
            Duration::from_secs(20),
            |status| match status["last_nack"]["error"].as_str() {
                Some(error) => Ok(error.to_string()),
                None => Err(format!("no NACK yet: {status}")),
            },
        )
        .await;
    assert!(
        nack.contains("Wasm"),
        "Envoy's error detail is kept: {nack}"
    );

    let envoy = &mesh.envoys[0];
    let rejected = envoy
        .stat("extension_config_discovery.http_filter.authz.update_rejected")
        .await
        .expect("stats");
    assert_eq!(rejected, 1);
    mesh.wait_until_served_by(0, "authz/a").await;

    // Watch for a resend loop over a window several ADS round trips long.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = mesh
        .control_plane
        .filter_on_node("envoy-1", "authz")
        .await
        .expect("status");
    assert_eq!(
        status["sends"], 3,
        "A, the bad module once, A again from the rollback: {status}"
    );
    assert_eq!(
        status["acked"], status["sent"],
        "the node is back on A: {status}"
    );
    assert_ne!(status["acked"], status["last_nack"]["version"], "{status}");
    let rollouts = mesh
        .control_plane
        .api("/api/v1/rollouts")
        .await
        .expect("rollouts");
    let quarantine = &rollouts["plugins"][0]["quarantine"];
    assert_eq!(
        quarantine.as_object().map(|q| q.len()),
        Some(1),
        "the bad sha is quarantined: {rollouts}"
    );
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(plugin["publishes"], 2, "{plugin}");
    let rejected_after = envoy
        .stat("extension_config_discovery.http_filter.authz.update_rejected")
        .await
        .expect("stats");
    assert_eq!(rejected_after, 1, "Envoy saw the bad module once");
    let nacks_logged = mesh.control_plane.log_records("NACKed").len();
    assert_eq!(nacks_logged, 1);
}
