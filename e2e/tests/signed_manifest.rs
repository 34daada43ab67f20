//! A plugin manifest pins its signers: two minisign keys, both required
//! (`spec.signers.threshold: 2`), and no `--trusted-key` on the control plane. A build signed
//! by one of them is refused before it is stored, saying 1 of the 2; once the second
//! signature lands beside it (`<file>.<label>.minisig`) the build is looked at again, joins
//! the chain, and its two signers show in `/api/v1/plugins` and in the decision log.

use std::time::Duration;

use e2e::Mesh;
use e2e::composed::{Ads, authz_config_yaml, plugin_manifest};
use e2e::paths::filter_artifact;
use e2e::signing::{keypair, public_key_line, sign};
use meshplug::store::sha256_hex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_runs_only_builds_signed_by_enough_of_its_signers() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (a_pub, a_sec, a_id) = keypair(keys.path(), "release");
    let (b_pub, b_sec, b_id) = keypair(keys.path(), "security");
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    let signers = format!(
        "  signers:\n    keys: [{}, {}]\n    threshold: 2\n",
        public_key_line(&a_pub),
        public_key_line(&b_pub)
    );
    let manifest = plugin_manifest("authz", "authz", "authn", &authz_config_yaml(), &signers);
    mesh.write_manifest("plugins", "authz.yaml", &manifest)
        .expect("manifest");
    let status = mesh.wait_for_manifest("plugins/authz.yaml").await;
    assert!(
        status["error"].is_null(),
        "the manifest is in force: {status}"
    );
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    mesh.wait_for_chain(0, &[]).await;

    let build = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let bytes = std::fs::read(&build).expect("read");
    let sha = sha256_hex(&bytes);
    sign(&a_sec, &build, &keys.path().join("by-release.minisig"));
    mesh.publish(
        "authz.wasm.minisig",
        &std::fs::read(keys.path().join("by-release.minisig")).expect("sig"),
    )
    .expect("first signature");
    mesh.publish("authz.wasm", &bytes).expect("publish");
    let one_of_two = "the build with one of two signatures to be refused";
    let reason = mesh
        .wait_for_plugin("authz", one_of_two, Duration::from_secs(20), |plugin| {
            match plugin["last_rejection"]["reason"].as_str() {
                Some(reason) if reason.starts_with("1 of the 2") => Ok(reason.to_string()),
                _ => Err(format!("not yet: {}", plugin["last_rejection"])),
            }
        })
        .await;
    assert!(reason.contains(&format!("valid from {a_id}")), "{reason}");
    assert!(
        !mesh.dir().join(format!("data/store/{sha}.wasm")).exists(),
        "refused before it was stored"
    );
    mesh.wait_for_chain(0, &[]).await;

    sign(&b_sec, &build, &keys.path().join("by-security.minisig"));
    mesh.publish(
        "authz.wasm.security.minisig",
        &std::fs::read(keys.path().join("by-security.minisig")).expect("sig"),
    )
    .expect("second signature");
    mesh.wait_for_chain(0, &["authz"]).await;
    mesh.wait_until_served_by(0, "authz/a").await;
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["artifact"]["signers"],
        serde_json::json!([a_id, b_id]),
        "{plugin}"
    );
    let log = mesh
        .control_plane
        .api("/api/v1/rollouts/authz/decisions")
        .await
        .expect("decisions");
    let started = log
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["action"] == "start")
        .unwrap_or_else(|| panic!("a start decision: {log}"));
    let said = started["reason"].as_str().unwrap_or_default();
    assert!(
        said.contains(&format!("signed by key {a_id}, {b_id}")),
        "{started}"
    );
}
