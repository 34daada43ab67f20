//! A plugin manifest's VM settings (`rootId`, `vmId`, `vmConfig`) reach Envoy: the SDK's
//! `http_config` example (`../shared/compat/`) runs under them (its configured header on every
//! response), and Envoy's config dump shows the root id, the VM id and the VM configuration.

use std::time::Duration;

use e2e::composed::Ads;
use e2e::paths::compat_module;
use e2e::{Mesh, eventually};
use serde_json::Value;

const TEXT: &str = "under a shared VM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_settings_reach_envoy_and_the_filter_runs_under_them() {
    let module = compat_module("http_config.wasm").expect("compat corpus");
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    mesh.publish_copy(&module, "http_config.wasm")
        .expect("build");
    let manifest = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: http-config}}\n\
         spec:\n  artifact: http_config\n  configText: \"{TEXT}\"\n  rollout: immediate\n  \
         rootId: custom_root\n  vmId: shared-vm\n  vmConfig:\n    configurationText: \"vm text\"\n"
    );
    mesh.write_manifest("plugins", "http-config.yaml", &manifest)
        .expect("manifest");
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    mesh.wait_for_chain(0, &["http-config"]).await;
    eventually(Duration::from_secs(30), "the configured header", || async {
        let answer = mesh.get(0, "/", &[]).await.map_err(|e| e.to_string())?;
        match answer.headers.get("custom-header") {
            Some(value) if value == TEXT => Ok(()),
            other => Err(format!("status {}, custom-header {other:?}", answer.status)),
        }
    })
    .await;

    let url = format!(
        "http://{}/config_dump?resource=ecds_filters",
        mesh.envoys[0].admin
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let dump: Value = http
        .get(url)
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("json");
    let plugin = dump["configs"]
        .as_array()
        .and_then(|configs| {
            configs
                .iter()
                .find(|c| c["ecds_filter"]["name"] == "http-config")
        })
        .map(|c| c["ecds_filter"]["typed_config"]["config"].clone())
        .unwrap_or_default();
    assert_eq!(plugin["root_id"], "custom_root", "{dump}");
    assert_eq!(plugin["vm_config"]["vm_id"], "shared-vm", "{plugin}");
    assert_eq!(
        plugin["vm_config"]["configuration"]["value"], "vm text",
        "{plugin}"
    );
}
