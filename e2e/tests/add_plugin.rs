//! Dropping plugin manifests into `plugins/` puts the filters into the listener's chain, in
//! phase order (authn before authz, whatever the names), with `wrk` running: no request fails.
//! Then a configuration change reaches the filter over ECDS alone (the listener is not
//! touched), and requests show the order: without a key authz answers 401 before ratelimit
//! counts; with one, ratelimit answers 429 once its bucket is empty.

use std::time::Duration;

use e2e::Mesh;
use e2e::composed::{Ads, authz_config_yaml, plugin_manifest};
use e2e::mesh::TEST_API_KEY;
use e2e::paths::filter_artifact;
use e2e::wrk::run_wrk;

fn ratelimit(capacity: &str, refill: &str) -> String {
    plugin_manifest(
        "ratelimit",
        "ratelimit",
        "authz",
        &format!("{{key_header: x-client, capacity: {capacity}, refill_per_second: {refill}}}"),
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_plugins_join_the_chain_in_phase_order_without_a_failed_request() {
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    for build in ["authz.wasm", "ratelimit.wasm"] {
        let path = filter_artifact(build).expect("filters built");
        mesh.publish_copy(&path, build).expect("publish build");
    }
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    mesh.wait_for_chain(0, &[]).await;

    let url = mesh.envoys[0].url("/");
    let load = tokio::spawn(async move {
        let headers = [("x-api-key", TEST_API_KEY), ("x-client", "wrk")];
        run_wrk(&url, &headers, 16, Duration::from_secs(8)).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Named so that by name it would sort last: the phase puts it first.
    let authn = plugin_manifest("zz-authn", "authz", "authn", &authz_config_yaml(), "");
    mesh.write_manifest("plugins", "zz-authn.yaml", &authn)
        .expect("write");
    mesh.write_manifest(
        "plugins",
        "ratelimit.yaml",
        &ratelimit("1000000", "1000000"),
    )
    .expect("write");
    mesh.wait_for_chain(0, &["zz-authn", "ratelimit"]).await;
    let report = load.await.expect("wrk task").expect("wrk runs");
    eprintln!("wrk during the change: {report:?}");
    assert!(report.requests > 100, "{report:?}");
    assert_eq!(
        report.non_2xx, 0,
        "requests failed during the change: {report:?}"
    );
    assert_eq!(report.socket_errors, 0, "{report:?}");

    let modified = mesh.envoys[0]
        .stat("listener_manager.listener_modified")
        .await
        .expect("stat");
    let reloads = mesh.envoys[0]
        .stat_sum("ratelimit.config_reload")
        .await
        .expect("stat");
    mesh.write_manifest("plugins", "ratelimit.yaml", &ratelimit("2", "0.001"))
        .expect("write");
    e2e::eventually(
        Duration::from_secs(20),
        "the new ratelimit config",
        || async {
            let now = mesh.envoys[0].stat_sum("ratelimit.config_reload").await;
            match now {
                Ok(n) if n > reloads => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let after = mesh.envoys[0]
        .stat("listener_manager.listener_modified")
        .await
        .expect("stat");
    assert_eq!(
        after, modified,
        "a configuration change must not touch the listener"
    );

    let client = [("x-client", "c1")];
    for _ in 0..4 {
        let answer = mesh.get(0, "/", &client).await.expect("request");
        assert_eq!(answer.status, 401, "authn runs first: {}", answer.body);
    }
    let keyed = [("x-client", "c1"), ("x-api-key", TEST_API_KEY)];
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(mesh.get(0, "/", &keyed).await.expect("request").status);
        }
        out
    };
    assert_eq!(
        statuses,
        [200, 200, 429],
        "ratelimit's bucket was untouched by the 401s"
    );
}
