//! Two hosts run build A. Host 0's route to the artifact service is cut, then build B is
//! published: host 1 runs B; host 0 keeps serving A, its status says `FETCH FAILED` with the
//! reason, and B is neither NACKed nor quarantined. The route comes back and host 0 runs B with
//! no manual step.

use e2e::Mesh;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_from_the_artifacts_keeps_its_filter_then_catches_up() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let build_b = filter_artifact("test/authz-b.wasm").expect("test filters built");
    let sha_b = sha256_hex(&std::fs::read(&build_b).expect("read"));
    let mesh = Mesh::start_hosts(2, &[]).await.expect("hosts start");
    mesh.publish_config("authz", CONFIG).await.expect("config");
    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    mesh.wait_until_served_by(1, "authz/a").await;

    mesh.net().cut_artifacts(0).expect("cut host 0's route");
    mesh.publish_copy(&build_b, "authz.wasm")
        .expect("publish B");
    mesh.wait_until_served_by(1, "authz/b").await;
    let (status, reason) = mesh.wait_for_fetch_failure("envoy-1", "authz").await;
    assert!(
        reason.contains(&sha_b[..12]),
        "names the artifact: {reason}"
    );
    assert!(
        reason.contains(&format!("/artifacts/{sha_b}.wasm")) && reason.contains("connect"),
        "says what and why: {reason}"
    );
    assert!(status["last_nack"].is_null(), "not a NACK: {status}");
    // Host 0 keeps serving A, with the key enforced.
    let (tag, code) = mesh.served_by(0).await.expect("request");
    assert_eq!((tag.as_str(), code), ("authz/a", 200));
    assert_eq!(mesh.get(0, "/", &[]).await.expect("request").status, 401);
    // The CLI's table says so.
    let nodes = mesh
        .control_plane
        .api("/api/v1/nodes")
        .await
        .expect("nodes");
    let table = meshplug::client::status_table(&nodes);
    let line = table
        .lines()
        .find(|l| l.starts_with("envoy-1 "))
        .expect("envoy-1 row");
    assert!(line.ends_with("FETCH FAILED"), "{table}");
    assert!(table.contains("fetch failed: "), "{table}");

    mesh.net()
        .restore_artifacts(0)
        .expect("restore host 0's route");
    mesh.wait_until_acked("envoy-1", "authz", &sha_b).await;
    mesh.wait_until_served_by(0, "authz/b").await;
    let status = mesh
        .control_plane
        .filter_on_node("envoy-1", "authz")
        .await
        .expect("status");
    assert!(status["last_fetch_failure"].is_null(), "cleared: {status}");
    let rollouts = mesh
        .control_plane
        .api("/api/v1/rollouts")
        .await
        .expect("rollouts");
    assert!(
        !rollouts.to_string().contains("\"rollback\""),
        "nothing rolled back: {rollouts}"
    );
}
