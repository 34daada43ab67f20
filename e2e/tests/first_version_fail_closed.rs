//! A first version that fails every request (it panics: Envoy answers 503 `wasm_fail_stream`)
//! has no last good to go back to. Its failure policy is `failClosed` (folder mode's default),
//! so it stays, the rollout pauses for a person, an alert reaches the webhook, and `meshplug
//! status` shows each proxy FAILING and why.

use std::time::Duration;

use e2e::eventually;
use e2e::rollout::{RolloutMesh, TEST_POLICY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_version_is_kept_paused_and_alerted() {
    // The test policy, with a bake long enough for two looks past its settle time.
    let policy = TEST_POLICY.replace("\"bake\": \"2s\"", "\"bake\": \"8s\"");
    let bed = RolloutMesh::start_with_policy(&policy, false)
        .await
        .expect("mesh starts");
    bed.wait_for_traffic(600).await;
    let (sha, _) = bed.publish("panic").expect("publish");
    let plugin = bed
        .wait_for("the rollout to pause", Duration::from_secs(60), |p| {
            p["rollout"]["paused"]["reason"].is_string()
        })
        .await;
    let reason = plugin["rollout"]["paused"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("failurePolicy failClosed"), "{plugin}");
    assert!(reason.contains("5xx ratio"), "{plugin}");
    assert_eq!(
        plugin["rollout"]["to"]["sha256"],
        sha.as_str(),
        "kept: {plugin}"
    );
    assert!(plugin["last_good"].is_null(), "{plugin}");
    eventually(Duration::from_secs(10), "the pause alert", || async {
        let alerts = bed.webhook.received();
        match alerts.iter().find(|a| a["action"] == "pause") {
            Some(alert) if alert["reason"] == reason => Ok(()),
            _ => Err(format!("alerts: {alerts:?}")),
        }
    })
    .await;
    let table = eventually(Duration::from_secs(15), "both proxies FAILING", || async {
        let table = bed.mesh.control_plane.cli(&["status"]);
        let failing = table.lines().filter(|l| l.ends_with("FAILING")).count();
        match failing {
            2 => Ok(table),
            _ => Err(table),
        }
    })
    .await;
    assert!(table.contains("  failing: 5xx ratio"), "{table}");
    let rollouts = bed.mesh.control_plane.cli(&["rollouts"]);
    assert!(
        rollouts.contains("paused: first version failing"),
        "{rollouts}"
    );
    println!("{table}{rollouts}");
}
