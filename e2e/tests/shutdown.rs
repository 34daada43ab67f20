//! SIGTERM stops the control plane gracefully with proxies connected: it stops accepting,
//! closes the ADS streams, saves its state and exits 0 promptly. The proxies keep serving the
//! configuration they hold.

use std::time::Duration;

use e2e::Mesh;
use e2e::mesh::TEST_API_KEY;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_saves_state_and_exits() {
    let build = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let sha = sha256_hex(&std::fs::read(&build).expect("read"));
    let mut mesh = Mesh::start().await.expect("mesh starts");
    mesh.add_envoy("envoy-2", "edge")
        .await
        .expect("second envoy");
    mesh.publish_authz_config().expect("config");
    mesh.publish_copy(&build, "authz.wasm").expect("publish");
    mesh.wait_until_acked("envoy-1", "authz", &sha).await;
    mesh.wait_until_acked("envoy-2", "authz", &sha).await;

    let status = mesh
        .control_plane
        .process()
        .terminate(Duration::from_secs(10))
        .await
        .expect("exits within 10 s of SIGTERM, streams open");
    assert!(status.success(), "{status:?}");
    assert!(!mesh.control_plane.log_records("shutting down").is_empty());
    assert!(!mesh.control_plane.log_records("stopped").is_empty());
    let nodes = std::fs::read_to_string(mesh.dir().join("data/rollouts/nodes.json"))
        .expect("nodes.json saved");
    assert!(nodes.contains("envoy-2"), "{nodes}");
    let answer = mesh
        .get(0, "/", &[("x-api-key", TEST_API_KEY)])
        .await
        .expect("request");
    assert_eq!(answer.status, 200, "Envoy keeps what it was given");
    assert_eq!(answer.header("x-meshplug-filter"), Some("authz/a"));
}
