//! A bad build reaches the canary only and is rolled back to the last good sha on every
//! Envoy: it panics on every request (Envoy answers 503 wasm_fail_stream). The traffic gate decides; the sha is quarantined, an alert reaches the webhook
//! and the decision log says why.

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_panic_rolls_back() {
    let bed = RolloutMesh::start(false).await.expect("mesh starts");
    let good = bed
        .deploy_first("good")
        .await
        .expect("good version deployed");
    let latency = bed.expect_rollback("panic", &good, "traffic").await;
    assert!(latency.as_secs() < 60, "rollback took {latency:?}");
}
