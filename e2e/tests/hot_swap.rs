//! Drop build A, then build B, into the watched folder: the same Envoy process serves A, then B,
//! with no restart and no rejected update.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_a_then_b_in_the_same_envoy() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let build_b = filter_artifact("test/authz-b.wasm").expect("test filters built");
    let mut mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish_authz_config().expect("config");

    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    let envoy = &mesh.envoys[0];
    let uptime_a = envoy.stat("server.uptime").await.expect("stats");
    let pid = mesh.envoys[0].process().pid();
    let denied = mesh.get(0, "/", &[]).await.expect("request");
    assert_eq!(denied.status, 401, "A enforces the key");

    mesh.publish_copy(&build_b, "authz.wasm")
        .expect("publish B");
    mesh.wait_until_served_by(0, "authz/b").await;

    let envoy = &mut mesh.envoys[0];
    assert_eq!(envoy.process().pid(), pid, "same Envoy process");
    assert!(envoy.process().is_running());
    let envoy = &mesh.envoys[0];
    let uptime_b = eventually(Duration::from_secs(5), "server.uptime to grow", || async {
        let now = envoy
            .stat("server.uptime")
            .await
            .map_err(|e| e.to_string())?;
        if now > uptime_a {
            Ok(now)
        } else {
            Err(format!("uptime {now} <= {uptime_a}"))
        }
    })
    .await;
    assert!(uptime_b > uptime_a, "Envoy was not restarted");
    let heartbeats = envoy
        .stat_sum("meshplug_heartbeat_authz")
        .await
        .expect("stats");
    assert!(heartbeats > 0, "authz counts a heartbeat per request");
    for stat in ["config_fail", "update_rejected", "update_failure"] {
        let name = format!("extension_config_discovery.http_filter.authz.{stat}");
        assert_eq!(envoy.stat(&name).await.expect("stats"), 0, "{name}");
    }
    let status = mesh
        .control_plane
        .filter_on_node("envoy-1", "authz")
        .await
        .expect("status");
    assert_eq!(
        status["acked"], status["sent"],
        "the node ACKed what it was sent: {status}"
    );
    assert!(status["last_nack"].is_null(), "{status}");
}
