//! A bad build reaches the canary only and is rolled back to the last good sha on every
//! Envoy: its on_configure fails, so Envoy NACKs it. The acceptance gate decides; the sha is quarantined, an alert reaches the webhook
//! and the decision log says why.

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_configure_fails_rolls_back() {
    let bed = RolloutMesh::start(false).await.expect("mesh starts");
    let good = bed
        .deploy_first("good")
        .await
        .expect("good version deployed");
    let latency = bed
        .expect_rollback("configure-fails", &good, "acceptance")
        .await;
    assert!(latency.as_secs() < 60, "rollback took {latency:?}");
}
