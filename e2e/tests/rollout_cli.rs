//! The rollout CLI against a running control plane with an admin token: `meshplug rollouts`
//! shows a rollout in progress; reads and `pause` without the token are refused; with it, pause, rollback
//! (which quarantines), retry (which lifts the quarantine and rolls out again) and
//! `promote --full` do what they say.

use std::time::Duration;

use e2e::control_plane::run_cli;
use e2e::rollout::{RolloutMesh, TEST_POLICY};

const TOKEN: &str = "e2e-t0ken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_and_steers_a_rollout() {
    let bed = RolloutMesh::start_with_args(TEST_POLICY, false, &["--admin-token", TOKEN])
        .await
        .expect("mesh starts");
    let admin = format!("http://{}", bed.mesh.control_plane.addrs.admin);
    let good = bed.deploy_first("good").await.expect("good deployed");
    let (next, _) = bed.publish("good-v2").expect("publish v2");
    bed.wait_for("a rollout", Duration::from_secs(20), |p| {
        p["rollout"]["to"]["sha256"] == next.as_str()
    })
    .await;

    // With a token set, reads need it too (filter configurations carry secrets).
    let (ok, _, err) = run_cli(&admin, &["rollouts", "-o", "json"], None);
    assert!(
        !ok && err.contains("Bearer"),
        "a read without the token: {err}"
    );
    let (ok, out, _) = run_cli(&admin, &["rollouts", "-o", "json"], Some(TOKEN));
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        list["plugins"][0]["rollout"]["to"]["sha256"],
        next.as_str(),
        "{out}"
    );
    let (ok, table, _) = run_cli(&admin, &["rollouts"], Some(TOKEN));
    assert!(
        ok && table.contains("authz") && table.contains(&next[..12]),
        "{table}"
    );

    let (ok, _, err) = run_cli(&admin, &["pause", "authz"], None);
    assert!(
        !ok && err.contains("Bearer"),
        "refused without the token: {err}"
    );
    let (ok, out, err) = run_cli(&admin, &["pause", "authz"], Some(TOKEN));
    assert!(ok && out.contains("paused"), "{out}{err}");
    let (_, table, _) = run_cli(&admin, &["rollouts"], Some(TOKEN));
    assert!(table.contains("paused"), "{table}");

    let (ok, out, err) = run_cli(&admin, &["rollback", "authz"], Some(TOKEN));
    assert!(ok && out.contains("rolled back"), "{out}{err}");
    let plugin = bed.plugin().await.expect("state");
    assert_eq!(plugin["last_good"]["sha256"], good.as_str());
    assert!(
        plugin["quarantine"]
            .as_object()
            .is_some_and(|q| q.len() == 1),
        "{plugin}"
    );
    bed.wait_everywhere(&good, "good", Duration::from_secs(20))
        .await;

    let (ok, out, err) = run_cli(&admin, &["retry", "authz", &next[..10]], Some(TOKEN));
    assert!(ok && out.contains("Started"), "{out}{err}");
    bed.wait_for("the retried rollout", Duration::from_secs(20), |p| {
        p["rollout"]["to"]["sha256"] == next.as_str()
            && p["quarantine"].as_object().is_some_and(|q| q.is_empty())
    })
    .await;
    let (ok, out, err) = run_cli(&admin, &["promote", "authz", "--full"], Some(TOKEN));
    assert!(ok && out.contains("promoted"), "{out}{err}");
    bed.wait_for("promotion", Duration::from_secs(10), |p| {
        p["last_good"]["sha256"] == next.as_str()
    })
    .await;
    bed.wait_everywhere(&next, "good-v2", Duration::from_secs(20))
        .await;

    let decisions = bed.decisions().await.expect("log");
    let manual: Vec<&str> = decisions
        .iter()
        .filter(|d| d["reason"].as_str().is_some_and(|r| r.contains("operator")))
        .filter_map(|d| d["action"].as_str())
        .collect();
    assert_eq!(manual, ["pause", "rollback", "promote"], "{decisions:?}");
}
