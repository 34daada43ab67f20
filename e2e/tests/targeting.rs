//! Two Envoys with different metadata labels, one on state-of-the-world ADS and one on Delta
//! ADS: a plugin that selects `tier: edge` reaches only the edge proxy; the core proxy keeps a
//! chain without it. The fleet view says which proxy runs what.

use std::time::Duration;

use e2e::composed::{Ads, authz_config_yaml, plugin_manifest};
use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reaches_only_the_proxies_its_selector_matches() {
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    let build = filter_artifact("authz.wasm").expect("filters built");
    mesh.publish_copy(&build, "authz.wasm").expect("publish");
    mesh.add_mesh_envoy("edge-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("edge envoy");
    mesh.add_mesh_envoy("core-1", "{tier: core}", Ads::Delta)
        .await
        .expect("core envoy (Delta ADS)");
    let targeted = "  targets:\n    labels: {tier: edge}\n";
    let manifest = plugin_manifest("authz", "authz", "authn", &authz_config_yaml(), targeted);
    mesh.write_manifest("plugins", "authz.yaml", &manifest)
        .expect("write");

    mesh.wait_for_chain(0, &["authz"]).await;
    let edge = mesh.get(0, "/", &[]).await.expect("edge request");
    assert_eq!(edge.status, 401, "the edge proxy runs authz");
    let core = mesh.get(1, "/", &[]).await.expect("core request");
    assert_eq!(core.status, 200, "the core proxy does not: {}", core.body);
    assert_eq!(
        mesh.chain_of(1).await.expect("dump"),
        ["envoy.filters.http.router"]
    );

    // Retargeting to the core tier moves it, over Delta for the core proxy.
    let retargeted = manifest.replace("tier: edge", "tier: core");
    mesh.write_manifest("plugins", "authz.yaml", &retargeted)
        .expect("write");
    mesh.wait_for_chain(1, &["authz"]).await;
    mesh.wait_for_chain(0, &[]).await;
    // Connections opened before the change drain on the old chain; new ones get the new.
    eventually(Duration::from_secs(10), "core to run authz", || async {
        match mesh.get(1, "/", &[]).await {
            Ok(answer) if answer.status == 401 => Ok(()),
            Ok(answer) => Err(format!("{}", answer.status)),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;

    let nodes = eventually(Duration::from_secs(10), "the fleet view", || async {
        let nodes = mesh
            .control_plane
            .api("/api/v1/nodes")
            .await
            .map_err(|e| e.to_string())?;
        let find = |id: &str| {
            nodes["nodes"]
                .as_array()
                .and_then(|all| all.iter().find(|n| n["id"] == id).cloned())
                .unwrap_or_default()
        };
        let (edge, core) = (find("edge-1"), find("core-1"));
        let core_acked = core["filters"]["authz"]["acked"].is_string();
        let edge_desired = edge["filters"]["authz"]["desired"].is_null();
        if core_acked && edge_desired {
            Ok((edge, core))
        } else {
            Err(format!("edge {edge}\ncore {core}"))
        }
    })
    .await;
    assert_eq!(nodes.1["metadata"]["tier"], "core", "{}", nodes.1);
}
