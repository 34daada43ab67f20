//! A plain-text configuration (not JSON) reaches a filter byte for byte, in each mode. The
//! public SDK's `http_config` example (`../shared/compat/`) puts its configuration into a
//! `custom-header` on every response. In folder mode the text comes from `<name>.config`, and a
//! `<name>.json` beside it is refused naming both files (the text stays in force); through a
//! manifest it comes from `configText`.

use std::time::Duration;

use e2e::composed::Ads;
use e2e::paths::compat_module;
use e2e::rollout::sha256_of;
use e2e::{Mesh, eventually};

const TEXT: &str = "The secret to life is meaningless unless you discover it yourself";

/// Waits until every answer of Envoy `envoy` carries `custom-header: <text>`.
async fn wait_for_header(mesh: &Mesh, envoy: usize, text: &str) {
    eventually(Duration::from_secs(30), "the configured header", || async {
        let answer = mesh.get(envoy, "/", &[]).await.map_err(|e| e.to_string())?;
        let header = answer
            .headers
            .get("custom-header")
            .map(|v| v.as_bytes().to_vec());
        match header {
            Some(bytes) if bytes == text.as_bytes() => Ok(()),
            other => Err(format!(
                "status {}, custom-header {:?}",
                answer.status,
                other.map(|b| String::from_utf8_lossy(&b).into_owned())
            )),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_from_a_config_file_reaches_the_filter_and_json_beside_it_is_refused() {
    let module = compat_module("http_config.wasm").expect("compat corpus");
    let mut mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish("authz.config", TEXT.as_bytes())
        .expect("config");
    mesh.publish_copy(&module, "authz.wasm").expect("build");
    wait_for_header(&mesh, 0, TEXT).await;

    let json = mesh.publish("authz.json", b"{}").expect("json");
    let sha = sha256_of(&json).expect("sha");
    let reason = mesh
        .wait_for_rejection("authz", &sha, "a second configuration file")
        .await;
    assert!(
        reason.contains("authz.json") && reason.contains("authz.config"),
        "{reason}"
    );
    wait_for_header(&mesh, 0, TEXT).await;
    assert!(mesh.envoys[0].process().is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_from_config_text_reaches_the_filter() {
    let module = compat_module("http_config.wasm").expect("compat corpus");
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    mesh.publish_copy(&module, "http_config.wasm")
        .expect("build");
    let manifest = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: http-config}}\n\
         spec:\n  artifact: http_config\n  configText: \"{TEXT}\"\n  rollout: immediate\n"
    );
    mesh.write_manifest("plugins", "http-config.yaml", &manifest)
        .expect("manifest");
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    mesh.wait_for_chain(0, &["http-config"]).await;
    wait_for_header(&mesh, 0, TEXT).await;
}
