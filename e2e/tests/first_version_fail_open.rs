//! A first version that fails every request (it answers 500) with `failurePolicy: failOpen` in
//! its manifest is taken off every proxy: they skip the filter again (the slot's pass-through),
//! the version is quarantined, an alert reaches the webhook and the decision says why.

use std::time::Duration;

use e2e::eventually;
use e2e::rollout::{RolloutMesh, TEST_POLICY};

const MANIFEST: &str = "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\n\
    metadata: {name: authz}\nspec:\n  artifact: authz\n  failurePolicy: failOpen\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_version_with_fail_open_is_taken_off() {
    let plugins = tempfile::tempdir().expect("plugins folder");
    std::fs::write(plugins.path().join("authz.yaml"), MANIFEST).expect("manifest");
    let folder = plugins.path().display().to_string();
    // The test policy, with a bake long enough for two looks past its settle time.
    let policy = TEST_POLICY.replace("\"bake\": \"2s\"", "\"bake\": \"8s\"");
    let bed = RolloutMesh::start_with_args(&policy, false, &["--plugins", &folder])
        .await
        .expect("mesh starts");
    bed.wait_for_traffic(600).await;
    let (sha, _) = bed.publish("status-500").expect("publish");
    let plugin = bed
        .wait_for("the version quarantined", Duration::from_secs(60), |p| {
            p["quarantine"]
                .as_object()
                .is_some_and(|q| q.keys().any(|k| k.starts_with(&sha)))
        })
        .await;
    assert!(plugin["rollout"].is_null(), "{plugin}");
    assert!(plugin["last_good"].is_null(), "{plugin}");
    let decisions = bed.decisions().await.expect("decision log");
    let rollback = decisions
        .iter()
        .find(|d| d["action"] == "rollback")
        .unwrap_or_else(|| panic!("a rollback: {decisions:?}"));
    assert_eq!(rollback["gate"], "traffic", "{rollback}");
    let reason = rollback["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("failOpen takes it off every proxy"),
        "{reason}"
    );
    eventually(Duration::from_secs(10), "the rollback alert", || async {
        let alerts = bed.webhook.received();
        match alerts.iter().any(|a| a["action"] == "rollback") {
            true => Ok(()),
            false => Err(format!("alerts: {alerts:?}")),
        }
    })
    .await;
    eventually(
        Duration::from_secs(15),
        "both Envoys skip the filter",
        || async {
            for i in 0..bed.mesh.envoys.len() {
                let (served, status) = bed.mesh.served_by(i).await.map_err(|e| e.to_string())?;
                if status != 200 || served.starts_with("variant/") {
                    return Err(format!("envoy {i}: {status} from {served:?}"));
                }
            }
            Ok(())
        },
    )
    .await;
}
