//! A callout filter gets its cluster in each mode. The public SDK's `http_auth_random` example
//! (`../shared/compat/`) calls cluster `httpbin` on every request and lets the request through
//! when the first byte of the answer is even, else answers 403. The test declares `httpbin`
//! as a `kind: Cluster` manifest pointing at a loopback server that always answers `0` (even),
//! then moves it to one that answers `1` (odd): the verdict follows, so the callout really
//! reaches the declared cluster, served over CDS. In folder mode the manifest sits in the
//! artifacts folder; with `--plugins` alone in the plugins folder (the listeners are the
//! bootstrap's); with `--mesh` in the mesh folder. A plugin naming a cluster nobody declares
//! is refused before any push.

use e2e::Mesh;
use e2e::compat::{cluster_manifest, wait_for_auth_verdict};
use e2e::composed::Ads;
use e2e::paths::compat_module;
use e2e::upstream::Upstream;

const MODULE: &str = "http_auth_random.wasm";

fn plugin(name: &str, callouts: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\n\
         spec:\n  artifact: http_auth_random\n  rollout: immediate\n  callouts: [{callouts}]\n"
    )
}

/// Declares cluster `httpbin` at `addr` in manifest folder `folder`, publishes the module,
/// and declares plugin `name` running it and calling `httpbin`.
fn declare(mesh: &Mesh, folder: &str, name: &str, addr: std::net::SocketAddr) {
    let cluster = cluster_manifest("httpbin", addr);
    mesh.write_manifest(folder, "httpbin.yaml", &cluster)
        .expect("cluster");
    mesh.publish_copy(&compat_module(MODULE).expect("corpus"), MODULE)
        .expect("build");
    mesh.write_manifest("plugins", &format!("{name}.yaml"), &plugin(name, "httpbin"))
        .expect("plugin");
}

async fn servers() -> (Upstream, Upstream) {
    let even = Upstream::start_answering("0").await.expect("even server");
    let odd = Upstream::start_answering("1").await.expect("odd server");
    (even, odd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_mode_declares_the_cluster_beside_the_build() {
    let (even, odd) = servers().await;
    let mut mesh = Mesh::start().await.expect("mesh starts");
    let cluster = |addr| cluster_manifest("httpbin", addr);
    mesh.publish("httpbin.yaml", cluster(even.addr).as_bytes())
        .expect("cluster");
    mesh.publish_copy(&compat_module(MODULE).expect("corpus"), "authz.wasm")
        .expect("build");
    wait_for_auth_verdict(&mesh, 0, true).await;
    mesh.publish("httpbin.yaml", cluster(odd.addr).as_bytes())
        .expect("cluster moved");
    wait_for_auth_verdict(&mesh, 0, false).await;

    // Folder mode reads clusters only from the artifacts folder: a plugin there is refused.
    mesh.publish("stray.yaml", plugin("stray", "httpbin").as_bytes())
        .expect("stray manifest");
    let status = mesh
        .wait_for_manifest_where("artifacts/stray.yaml", |s| s["error"].is_object())
        .await;
    let reason = status["error"]["message"].as_str().unwrap_or_default();
    assert!(reason.contains("clusters only"), "{status}");
    assert!(mesh.envoys[0].process().is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_alone_serve_the_cluster_and_refuse_an_undeclared_one_before_any_push() {
    let (even, _odd) = servers().await;
    let mesh = Mesh::start_with_plugins(&[]).await.expect("mesh starts");
    declare(&mesh, "plugins", "authz", even.addr);
    wait_for_auth_verdict(&mesh, 0, true).await;

    mesh.write_manifest(
        "plugins",
        "ratelimit.yaml",
        &plugin("ratelimit", "httpbin, ledger"),
    )
    .expect("plugin");
    let status = mesh
        .wait_for_manifest_where("plugins/ratelimit.yaml", |s| s["error"].is_object())
        .await;
    assert_eq!(status["error"]["field"], "spec.callouts[1]", "{status}");
    let reason = status["error"]["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`ratelimit`") && reason.contains("`ledger`"),
        "{reason}"
    );
    let pushed = mesh
        .control_plane
        .filter_on_node("envoy-1", "ratelimit")
        .await
        .expect("nodes");
    assert!(pushed.is_null(), "never pushed: {pushed}");
    assert!(
        mesh.control_plane
            .plugin("ratelimit")
            .await
            .expect("plugins")
            .is_null()
    );
    wait_for_auth_verdict(&mesh, 0, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_mesh_serves_the_cluster_with_its_listeners() {
    let (even, _odd) = servers().await;
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    declare(&mesh, "mesh", "auth", even.addr);
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy");
    mesh.wait_for_chain(0, &["auth"]).await;
    wait_for_auth_verdict(&mesh, 0, true).await;
}
