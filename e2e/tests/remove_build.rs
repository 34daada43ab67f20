//! Folder mode: deleting a filter's configuration resets it to `{}`, and deleting its build
//! takes the filter out of every proxy (the bootstrap's slot passes requests again), logged as
//! a `remove` decision. Putting the build back brings it back.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_configuration_resets_it_and_deleting_the_build_removes_the_filter() {
    let mut mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish_authz_config().expect("config");
    let build = filter_artifact("authz.wasm").expect("make filters");
    mesh.publish_copy(&build, "authz.wasm").expect("build");
    mesh.wait_until_served_by(0, "authz/dev").await;

    std::fs::remove_file(mesh.artifacts().join("authz.json")).expect("delete config");
    mesh.wait_for_plugin(
        "authz",
        "the configuration reset",
        Duration::from_secs(20),
        |p| match p["config_json"].as_str() {
            Some("{}") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;

    std::fs::remove_file(mesh.artifacts().join("authz.wasm")).expect("delete build");
    eventually(Duration::from_secs(20), "the filter to leave", || async {
        let answer = mesh.get(0, "/", &[]).await.map_err(|e| e.to_string())?;
        match (answer.status, answer.header("x-meshplug-filter")) {
            (200, None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugins");
    assert!(plugin.is_null(), "forgotten: {plugin}");
    let log = mesh
        .control_plane
        .api("/api/v1/rollouts/authz/decisions")
        .await
        .expect("decisions");
    let removed = log.as_array().into_iter().flatten().any(|d| {
        d["action"] == "remove"
            && d["reason"]
                .as_str()
                .is_some_and(|r| r.contains("authz.wasm was deleted"))
    });
    assert!(removed, "{log}");

    mesh.publish_authz_config().expect("config again");
    mesh.publish_copy(&build, "authz.wasm")
        .expect("build again");
    mesh.wait_until_served_by(0, "authz/dev").await;
    assert!(mesh.envoys[0].process().is_running());
}
