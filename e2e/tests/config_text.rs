//! A plain-text configuration (not JSON) reaches a filter byte for byte, in each mode. The
//! public SDK's `http_config` example (`../shared/compat/`) puts its configuration into a
//! `custom-header` on every response. In folder mode the text comes from `<name>.config`, and a
//! `<name>.json` beside it is refused naming both files (the text stays in force); through a
//! manifest it comes from `configText`.

use e2e::Mesh;
use e2e::compat::{composed_with, wait_for_header};
use e2e::paths::compat_module;
use e2e::rollout::sha256_of;

const TEXT: &str = "The secret to life is meaningless unless you discover it yourself";
const HEADER: &str = "custom-header";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_from_a_config_file_reaches_the_filter_and_json_beside_it_is_refused() {
    let module = compat_module("http_config.wasm").expect("compat corpus");
    let mut mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish("authz.config", TEXT.as_bytes())
        .expect("config");
    mesh.publish_copy(&module, "authz.wasm").expect("build");
    wait_for_header(&mesh, 0, HEADER, TEXT).await;

    let json = mesh.publish("authz.json", b"{}").expect("json");
    let sha = sha256_of(&json).expect("sha");
    let reason = mesh
        .wait_for_rejection("authz", &sha, "a second configuration file")
        .await;
    assert!(
        reason.contains("authz.json") && reason.contains("authz.config"),
        "{reason}"
    );
    wait_for_header(&mesh, 0, HEADER, TEXT).await;
    assert!(mesh.envoys[0].process().is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_from_config_text_reaches_the_filter() {
    let spec = format!("  configText: \"{TEXT}\"\n");
    let mesh = composed_with("http_config.wasm", "http-config", &spec)
        .await
        .expect("mesh");
    wait_for_header(&mesh, 0, HEADER, TEXT).await;
}
