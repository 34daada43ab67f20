//! kill -9 of the control plane in the middle of a rollout, then a restart on the same ports
//! and data folder: the rollout resumes from the persisted state and is promoted; the decision
//! log keeps what came before, and the version is started once, not twice.

use std::time::Duration;

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_survives_a_control_plane_crash() {
    let mut bed = RolloutMesh::start(false).await.expect("mesh starts");
    bed.deploy_first("good")
        .await
        .expect("good version deployed");
    let (next, _) = bed.publish("good-v2").expect("publish v2");
    let before = bed
        .wait_for("the canary step", Duration::from_secs(20), |p| {
            p["rollout"]["to"]["sha256"] == next.as_str()
        })
        .await;
    let rollout_id = before["rollout"]["id"].clone();
    let logged_before = bed.decisions().await.expect("log").len();

    bed.mesh
        .control_plane
        .kill_and_restart()
        .await
        .expect("restarted");

    let resumed = bed.plugin().await.expect("state after restart");
    assert!(
        resumed["last_good"]["sha256"] == next.as_str() || resumed["rollout"]["id"] == rollout_id,
        "the same rollout resumed (or already finished): {resumed}"
    );
    bed.wait_for(
        "promotion after the restart",
        Duration::from_secs(90),
        |p| p["last_good"]["sha256"] == next.as_str(),
    )
    .await;
    bed.wait_everywhere(&next, "good-v2", Duration::from_secs(10))
        .await;
    let log = bed.decisions().await.expect("log");
    assert!(
        log.len() > logged_before,
        "the log kept its entries and grew"
    );
    let starts = log
        .iter()
        .filter(|d| {
            d["action"] == "start" && d["to"].as_str().is_some_and(|t| t.starts_with(&next))
        })
        .count();
    assert_eq!(starts, 1, "v2 started once: {log:?}");
    let seqs: Vec<u64> = log.iter().filter_map(|d| d["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers only grow: {seqs:?}"
    );
}
