//! Removing a plugin's manifest takes its filter out of every chain; the other plugin stays.

use std::time::Duration;

use e2e::composed::{Ads, authz_config_yaml, plugin_manifest};
use e2e::mesh::TEST_API_KEY;
use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_manifest_takes_the_filter_out() {
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    for build in ["authz.wasm", "header-rewrite.wasm"] {
        let path = filter_artifact(build).expect("filters built");
        mesh.publish_copy(&path, build).expect("publish");
    }
    mesh.add_mesh_envoy("envoy-1", "{}", Ads::Delta)
        .await
        .expect("envoy starts");
    let authz = plugin_manifest("authz", "authz", "authn", &authz_config_yaml(), "");
    let rewrite = plugin_manifest(
        "header-rewrite",
        "header-rewrite",
        "custom",
        "{response: {set: {x-rewritten: 'yes'}}}",
        "",
    );
    mesh.write_manifest("plugins", "authz.yaml", &authz)
        .expect("write");
    mesh.write_manifest("plugins", "rewrite.yaml", &rewrite)
        .expect("write");
    mesh.wait_for_chain(0, &["authz", "header-rewrite"]).await;
    assert_eq!(mesh.get(0, "/", &[]).await.expect("request").status, 401);

    mesh.remove_manifest("plugins", "authz.yaml")
        .expect("remove");
    mesh.wait_for_chain(0, &["header-rewrite"]).await;
    // A keep-alive connection opened before the change drains on the old chain (Envoy closes
    // it after its next answer); new connections get the new chain.
    let answer = eventually(Duration::from_secs(10), "authz to be gone", || async {
        match mesh.get(0, "/", &[]).await {
            Ok(answer) if answer.status == 200 => Ok(answer),
            Ok(answer) => Err(format!("{} {}", answer.status, answer.body)),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    assert_eq!(
        answer.header("x-rewritten"),
        Some("yes"),
        "header-rewrite stays"
    );
    let keyed = mesh
        .get(0, "/", &[("x-api-key", TEST_API_KEY)])
        .await
        .expect("request");
    assert_eq!(keyed.status, 200);
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert!(plugin["manifest"].is_null(), "{plugin}");
}
