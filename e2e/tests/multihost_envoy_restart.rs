//! Mid-rollout, the Envoy on the host that is not the canary is killed and its host's cache
//! emptied. It comes back, its agent fetches the last good build again, and it runs that; when
//! the rollout reaches it, it fetches and runs the new one.

use std::time::Duration;

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envoy_restarted_mid_rollout_fetches_and_runs_what_it_should() {
    let mut bed = RolloutMesh::start_on_hosts(2).await.expect("hosts start");
    let good = bed
        .deploy_first("good")
        .await
        .expect("good version deployed");
    let (next, _) = bed.publish("good-v2").expect("publish v2");
    let rollout = bed
        .wait_for("the canary to ACK v2", Duration::from_secs(20), |p| {
            p["rollout"]["to"]["sha256"] == next.as_str()
                && p["rollout"]["canary"]
                    .as_array()
                    .is_some_and(|c| c.len() == 1)
        })
        .await;
    let canary = rollout["rollout"]["canary"][0]
        .as_str()
        .expect("canary id")
        .to_string();
    let other = if canary == "envoy-1" { 1 } else { 0 };
    let cache = bed.mesh.dir().join(format!("host-{other}/cache"));
    for entry in std::fs::read_dir(&cache).expect("cache").flatten() {
        std::fs::remove_file(entry.path()).expect("empty the cache");
    }
    bed.mesh.restart_host_envoy(other).await.expect("restart");
    let node = format!("envoy-{}", other + 1);
    bed.mesh.wait_until_acked(&node, "authz", &good).await;
    bed.mesh.wait_until_served_by(other, "variant/good").await;
    let refetched = std::fs::read_dir(&cache).expect("cache").flatten().count();
    assert!(
        refetched >= 1,
        "the agent fetched the last good build again"
    );
    let done = bed
        .wait_for("promotion", Duration::from_secs(90), |p| {
            p["last_good"]["sha256"] == next.as_str()
                || !p["quarantine"].as_object().is_some_and(|q| q.is_empty())
        })
        .await;
    assert_eq!(
        done["last_good"]["sha256"],
        next.as_str(),
        "promoted, not rolled back: {done}"
    );
    bed.mesh.wait_until_acked(&node, "authz", &next).await;
    bed.wait_everywhere(&next, "good-v2", Duration::from_secs(10))
        .await;
}
