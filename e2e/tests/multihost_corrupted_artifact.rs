//! Two hosts run build A. Host 1's agent fetches through a relay that flips a byte of every
//! body. Build B is published: host 0 runs it; on host 1 the sha256 check refuses the damaged
//! bytes, nothing is cached, its Envoy keeps serving A, and its status says why.

use e2e::Mesh;
use e2e::corrupting::CorruptingRelay;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_damaged_on_the_wire_are_refused_on_the_host_and_never_run() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let build_b = filter_artifact("test/authz-b.wasm").expect("test filters built");
    let sha_b = sha256_hex(&std::fs::read(&build_b).expect("read"));
    let mut mesh = Mesh::start_hosts(2, &[]).await.expect("hosts start");
    mesh.publish_config("authz", CONFIG).await.expect("config");
    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    mesh.wait_until_served_by(1, "authz/a").await;

    let service = mesh
        .control_plane
        .addrs
        .artifacts
        .expect("artifact service");
    let relay = CorruptingRelay::start(mesh.net().control_plane_ip(), &format!("http://{service}"))
        .await
        .expect("relay");
    let via_relay = format!("http://{}", relay.addr);
    mesh.restart_agent_with(1, &["--artifacts-url", &via_relay])
        .await
        .expect("host 1's agent through the relay");
    mesh.publish_copy(&build_b, "authz.wasm")
        .expect("publish B");
    mesh.wait_until_served_by(0, "authz/b").await;
    let (_, reason) = mesh.wait_for_fetch_failure("envoy-2", "authz").await;
    assert!(reason.contains("sha256 mismatch"), "{reason}");
    assert!(reason.contains(&sha_b), "names the expected sha: {reason}");
    let cache = mesh.dir().join("host-1/cache");
    let cached: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !cached.iter().any(|name| name.contains(&sha_b)),
        "nothing of B cached on host 1: {cached:?}"
    );
    // Still A, still enforcing, and B's damaged bytes never loaded: no NACK either.
    let (tag, code) = mesh.served_by(1).await.expect("request");
    assert_eq!((tag.as_str(), code), ("authz/a", 200));
    assert_eq!(mesh.get(1, "/", &[]).await.expect("request").status, 401);
    let status = mesh
        .control_plane
        .filter_on_node("envoy-2", "authz")
        .await
        .expect("status");
    assert!(status["last_nack"].is_null(), "{status}");
    drop(relay);
}
