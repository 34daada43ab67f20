//! The metrics feed goes down mid-rollout (the relay between Envoy and the MetricsService is
//! cut): the rollout pauses and alerts, and does not roll back. When the feed returns, the
//! pause lifts and the version is promoted.

use std::time::Duration;

use e2e::eventually;
use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_outage_pauses_and_never_rolls_back() {
    let mut bed = RolloutMesh::start(true).await.expect("mesh starts");
    bed.deploy_first("good")
        .await
        .expect("good version deployed");
    bed.metrics_relay.as_mut().expect("relay").cut();
    let (next, _) = bed.publish("good-v2").expect("publish v2");
    let paused = bed
        .wait_for("a pause", Duration::from_secs(30), |p| {
            p["rollout"]["paused"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("metrics feed down"))
        })
        .await;
    assert_eq!(paused["rollout"]["to"]["sha256"], next.as_str(), "{paused}");
    assert!(
        paused["quarantine"]
            .as_object()
            .is_some_and(|q| q.is_empty()),
        "{paused}"
    );
    // The webhook POST is sent after the decision is recorded: wait for it.
    let alerts = eventually(Duration::from_secs(10), "the pause alert", || async {
        let alerts = bed.webhook.received();
        if alerts.iter().any(|a| a["action"] == "pause") {
            Ok(alerts)
        } else {
            Err(format!("alerts: {alerts:?}"))
        }
    })
    .await;
    assert!(
        !alerts.iter().any(|a| a["action"] == "rollback"),
        "no rollback: {alerts:?}"
    );

    bed.metrics_relay
        .as_mut()
        .expect("relay")
        .restore()
        .await
        .expect("feed back");
    let done = bed
        .wait_for(
            "promotion once the feed is back",
            Duration::from_secs(90),
            |p| p["last_good"]["sha256"] == next.as_str(),
        )
        .await;
    assert!(
        done["quarantine"].as_object().is_some_and(|q| q.is_empty()),
        "{done}"
    );
    let actions: Vec<String> = bed
        .decisions()
        .await
        .expect("log")
        .iter()
        .map(|d| d["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(actions.iter().any(|a| a == "resume"), "{actions:?}");
    assert!(!actions.iter().any(|a| a == "rollback"), "{actions:?}");
}
