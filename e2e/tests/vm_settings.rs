//! A plugin manifest's VM settings (`rootId`, `vmId`, `vmConfig`) reach Envoy: the SDK's
//! `http_config` example (`../shared/compat/`) runs under them (its configured header on every
//! response), and Envoy's config dump shows the root id, the VM id and the VM configuration.

use e2e::compat::{composed_with, wait_for_header};
use serde_json::Value;

const TEXT: &str = "under a shared VM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_settings_reach_envoy_and_the_filter_runs_under_them() {
    let spec = format!(
        "  configText: \"{TEXT}\"\n  rootId: custom_root\n  vmId: shared-vm\n  vmConfig:\n    \
         configurationText: \"vm text\"\n"
    );
    let mesh = composed_with("http_config.wasm", "http-config", &spec)
        .await
        .expect("mesh");
    wait_for_header(&mesh, 0, "custom-header", TEXT).await;

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
