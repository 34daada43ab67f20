//! Swap the dynamic module `libauthz.so` from build A to build B through the watched folder while
//! requests flow: B serves, in the same Envoy process, and no request fails.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::traffic::Traffic;
use e2e::{Mesh, eventually};
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_hot_swap_a_then_b_under_traffic() {
    let build_a = filter_artifact("test/libauthz-a.so").expect("test filters built");
    let build_b = filter_artifact("test/libauthz-b.so").expect("test filters built");
    let mut mesh = Mesh::start_with(&["--prefer-kind", "native"])
        .await
        .expect("mesh starts");
    mesh.publish_config("authz", CONFIG).await.expect("config");

    mesh.publish_copy(&build_a, "libauthz.so")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    let denied = mesh.get(0, "/", &[]).await.expect("request");
    assert_eq!(denied.status, 401, "the module enforces the key");
    let pid = mesh.envoys[0].process().pid();

    let traffic = Traffic::start(mesh.envoys[0].url("/open/x"), 4, Duration::from_millis(2));
    eventually(Duration::from_secs(10), "traffic on A", || async {
        let on_a = traffic
            .tally()
            .get(&("authz/a".to_string(), 200))
            .copied()
            .unwrap_or(0);
        if on_a >= 50 {
            Ok(())
        } else {
            Err(format!("{on_a} answers from A"))
        }
    })
    .await;
    mesh.publish_copy(&build_b, "libauthz.so")
        .expect("publish B");
    mesh.wait_until_acked(
        "envoy-1",
        "authz",
        &sha256_hex(&std::fs::read(&build_b).expect("read")),
    )
    .await;
    mesh.wait_until_served_by(0, "authz/b").await;
    eventually(Duration::from_secs(10), "traffic on B", || async {
        let on_b = traffic
            .tally()
            .get(&("authz/b".to_string(), 200))
            .copied()
            .unwrap_or(0);
        if on_b >= 50 {
            Ok(())
        } else {
            Err(format!("{on_b} answers from B"))
        }
    })
    .await;
    let tally = traffic.tally();
    drop(traffic);

    let failed: u64 = tally
        .iter()
        .filter(|((tag, status), _)| *status != 200 || !tag.starts_with("authz/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(failed, 0, "no request failed during the swap: {tally:?}");
    assert_eq!(mesh.envoys[0].process().pid(), pid, "same Envoy process");
    assert!(mesh.envoys[0].process().is_running());
    let envoy = &mesh.envoys[0];
    for stat in ["config_fail", "update_rejected", "update_failure"] {
        let name = format!("extension_config_discovery.http_filter.authz.{stat}");
        assert_eq!(envoy.stat(&name).await.expect("stats"), 0, "{name}");
    }
    let heartbeats = envoy
        .stat_sum("meshplug_heartbeat_authz")
        .await
        .expect("stats");
    assert!(heartbeats > 0, "the native module counts heartbeats");
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(plugin["artifact"]["kind"], "native");
    assert_eq!(plugin["artifact"]["envoy_version"], "1.40.0", "{plugin}");
}
