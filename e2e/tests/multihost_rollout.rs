//! A canary rollout across two hosts behind agents, as on one host: a good build goes to the
//! canary host, then to both, and is promoted with no failed request; then a build answering
//! 500 goes to the canary host only and the traffic gate rolls it back (quarantined, alerted,
//! the last good back on both hosts).

use std::time::Duration;

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_across_hosts_promotes_a_good_build_and_rolls_a_bad_one_back() {
    let bed = RolloutMesh::start_on_hosts(2).await.expect("hosts start");
    bed.deploy_first("good")
        .await
        .expect("good version deployed");
    let (next, _) = bed.publish("good-v2").expect("publish v2");
    bed.wait_for_one_canary(&next).await;
    let done = bed
        .wait_for("promotion", Duration::from_secs(90), |p| {
            p["last_good"]["sha256"] == next.as_str()
        })
        .await;
    assert!(done["rollout"].is_null(), "{done}");
    bed.wait_everywhere(&next, "good-v2", Duration::from_secs(10))
        .await;
    for traffic in &bed.traffic {
        let failed: u64 = traffic
            .tally()
            .iter()
            .filter(|((_, status), _)| *status != 200)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(failed, 0, "no request failed: {:?}", traffic.tally());
    }
    bed.expect_rollback_to("status-500", (&next, "good-v2"), "traffic")
        .await;
}
