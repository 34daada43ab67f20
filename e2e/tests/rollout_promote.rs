//! A good new build goes to one Envoy (the canary, compared with the other as baseline), then
//! to both (compared with their own traffic before the push), bakes, and is promoted to last
//! good. No request fails on the way.

use std::time::Duration;

use e2e::rollout::RolloutMesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_version_is_promoted_through_every_step() {
    let bed = RolloutMesh::start(false).await.expect("mesh starts");
    let good = bed
        .deploy_first("good")
        .await
        .expect("good version deployed");
    let (next, published) = bed.publish("good-v2").expect("publish v2");
    let canary = bed.wait_for_one_canary(&next).await;
    assert_eq!(
        canary["rollout"]["baseline"].as_array().map(Vec::len),
        Some(1),
        "{canary}"
    );
    let done = bed
        .wait_for("promotion", Duration::from_secs(90), |p| {
            p["last_good"]["sha256"] == next.as_str()
        })
        .await;
    assert!(
        done["rollout"].is_null() && done["quarantine"].as_object().is_some_and(|q| q.is_empty()),
        "{done}"
    );
    bed.wait_everywhere(&next, "good-v2", Duration::from_secs(10))
        .await;
    println!(
        "promoted through every step in {} ms",
        published.elapsed().as_millis()
    );

    let actions: Vec<String> = bed
        .decisions()
        .await
        .expect("log")
        .iter()
        .filter(|d| d["to"].as_str().is_some_and(|t| t.starts_with(&next)))
        .map(|d| d["action"].as_str().unwrap_or("").to_string())
        .collect();
    for expected in ["start", "look", "advance", "promote"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "advance").count(),
        2,
        "step 0 → step 1 → bake: {actions:?}"
    );
    for traffic in &bed.traffic {
        let failed: u64 = traffic
            .tally()
            .iter()
            .filter(|((_, status), _)| *status != 200)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(failed, 0, "no request failed: {:?}", traffic.tally());
    }
    assert_ne!(good, next);
}
