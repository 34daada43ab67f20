//! A build that hangs the request path: the canary's worker never returns, Envoy's worker
//! watchdog (`kill_timeout: 3s` in the bootstrap) aborts the process, and the test, acting as
//! the supervisor, starts it again with the same node id. The proxy came back within the crash
//! window, so the liveness gate rolls back: the restarted Envoy is served the last good build
//! from its first response and does not crash again.

use std::time::{Duration, Instant};

use e2e::eventually;
use e2e::rollout::RolloutMesh;
use meshplug::bootstrap::BootstrapVars;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_build_is_rolled_back_by_the_liveness_gate() {
    let mut bed = RolloutMesh::start(false).await.expect("mesh starts");
    let good = bed
        .deploy_first("good")
        .await
        .expect("good version deployed");
    let (bad, published) = bed.publish("loop").expect("publish the looping build");
    let rollout = bed
        .wait_for("the canary to get it", Duration::from_secs(20), |p| {
            p["rollout"]["to"]["sha256"] == bad.as_str()
        })
        .await;
    let canary = rollout["rollout"]["canary"][0]
        .as_str()
        .expect("canary")
        .to_string();
    let index: usize = canary
        .trim_start_matches("envoy-")
        .parse::<usize>()
        .expect("id")
        - 1;

    let died = eventually(
        Duration::from_secs(30),
        "the watchdog to kill the canary",
        || {
            let running = bed.mesh.envoys[index].process().is_running();
            async move {
                if running {
                    Err("still running".to_string())
                } else {
                    Ok(Instant::now())
                }
            }
        },
    )
    .await;
    println!(
        "canary {canary} died {} ms after the publish",
        (died - published).as_millis()
    );

    bed.mesh
        .add_envoy_with(&canary, "rollout", BootstrapVars::new())
        .await
        .expect("supervisor restarts the canary");
    let restarted = bed.mesh.envoys.len() - 1;

    let plugin = bed
        .wait_for("the liveness rollback", Duration::from_secs(30), |p| {
            p["quarantine"]
                .as_object()
                .is_some_and(|q| q.keys().any(|k| k.starts_with(&bad)))
        })
        .await;
    assert_eq!(plugin["last_good"]["sha256"], good.as_str(), "{plugin}");
    let decisions = bed.decisions().await.expect("log");
    let rollback = decisions
        .iter()
        .find(|d| d["action"] == "rollback")
        .unwrap_or_else(|| panic!("a rollback: {decisions:?}"));
    assert_eq!(rollback["gate"], "liveness", "{rollback}");
    eventually(Duration::from_secs(10), "the alert", || async {
        let alerts = bed.webhook.received();
        if alerts.iter().any(|a| a["action"] == "rollback") {
            Ok(())
        } else {
            Err(format!("{alerts:?}"))
        }
    })
    .await;

    // A fresh Envoy serves its slot's default (pass-through) until ECDS arrives.
    eventually(
        Duration::from_secs(10),
        "the last good build on the restarted canary",
        || async {
            match bed.mesh.served_by(restarted).await {
                Ok((tag, _)) if tag == "variant/good" => Ok(()),
                other => Err(format!("served by {other:?}")),
            }
        },
    )
    .await;
    for _ in 0..50 {
        let (tag, status) = bed.mesh.served_by(restarted).await.expect("request");
        assert_eq!((status, tag.as_str()), (200, "variant/good"));
    }
    assert!(
        bed.mesh.envoys[restarted].process().is_running(),
        "no crash loop"
    );
    println!(
        "looping build: rolled back by the liveness gate; publish to the restarted canary serving the last good: {} ms",
        published.elapsed().as_millis()
    );
}
