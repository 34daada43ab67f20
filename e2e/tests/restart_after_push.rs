//! The control plane dies (SIGKILL) right after pushing a new version, before any proxy
//! answered (both Envoys are stopped with SIGSTOP for the moment of the push, so it is not
//! ACKed), and stays down longer than the 10 s ACK deadline. When it is back and the Envoys go on, the healthy
//! version is not quarantined: the downtime does not count against the deadline.

use std::time::Duration;

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_build_survives_a_long_downtime_right_after_its_push() {
    let mut bed = RolloutMesh::start(false).await.expect("mesh starts");
    bed.deploy_first("good").await.expect("good deployed");
    for envoy in &mut bed.mesh.envoys {
        envoy.process().set_stopped(true);
    }
    let (v2, _) = bed.publish("good-v2").expect("publish v2");
    let pushed = bed
        .wait_for("the v2 push to the canary", Duration::from_secs(20), |p| {
            p["rollout"]["to"]["sha256"] == v2.as_str()
                && p["rollout"]["pushed"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
        })
        .await;
    // Kill first, then let the Envoys go on at once: stopped longer than the bootstrap's 3 s
    // watchdog `kill_timeout`, Envoy would abort itself. They cannot ACK a dead control plane.
    bed.mesh.control_plane.process().kill();
    for envoy in &mut bed.mesh.envoys {
        envoy.process().set_stopped(false);
    }
    bed.mesh
        .control_plane
        .kill_and_restart_after(Duration::from_secs(12))
        .await
        .expect("restarted after 12 s down");
    let done = bed
        .wait_for("v2 promoted", Duration::from_secs(90), |p| {
            p["last_good"]["sha256"] == v2.as_str()
                || !p["quarantine"].as_object().is_none_or(|q| q.is_empty())
        })
        .await;
    assert!(
        done["quarantine"].as_object().is_none_or(|q| q.is_empty()),
        "the healthy build was quarantined after the restart: {done}"
    );
    assert_eq!(done["last_good"]["sha256"], v2.as_str(), "{done}");
    bed.wait_everywhere(&v2, "good-v2", Duration::from_secs(30))
        .await;
    println!(
        "pushed to {} before the crash; promoted after 12 s down",
        pushed["rollout"]["pushed"]
    );
}
