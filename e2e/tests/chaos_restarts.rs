//! The control plane is killed (SIGKILL) at random points of rollouts, seeded
//! (`MESHPLUG_CHAOS_SEED`, printed), at least 20 times, once staying down longer than the ACK
//! deadline right after a push; two Envoys under traffic stay connected through it. A healthy
//! version still ends promoted with nothing quarantined; a bad one still ends rolled back and
//! quarantined, and the healthy one serves everywhere.

use std::time::Duration;

use e2e::rollout::RolloutMesh;

/// A small, seeded generator (xorshift64*): the kill schedule is the same for the same seed.
struct Schedule(u64);

impl Schedule {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

const KILLS: usize = 20;

/// Waits a random moment (under 1.5 s), then SIGKILLs and restarts the control plane. Returns
/// whether a rollout was in progress when it died.
async fn kill_at_random(bed: &mut RolloutMesh, schedule: &mut Schedule) -> bool {
    let at = Duration::from_millis(schedule.next_ms(1500));
    tokio::time::sleep(at).await;
    let state = bed.plugin().await.expect("state");
    bed.mesh
        .control_plane
        .kill_and_restart()
        .await
        .expect("restarted");
    println!(
        "kill after {at:?}; rollout stage then: {}",
        state["rollout"]["stage"]
    );
    !state["rollout"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_end_where_they_should_however_often_the_control_plane_dies() {
    let seed = std::env::var("MESHPLUG_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    println!("chaos seed {seed} (set MESHPLUG_CHAOS_SEED to replay)");
    let mut schedule = Schedule(seed.max(1));
    let mut bed = RolloutMesh::start(false).await.expect("mesh starts");
    let good = bed.deploy_first("good").await.expect("good deployed");

    let (v2, _) = bed.publish("good-v2").expect("publish v2");
    bed.wait_for("the v2 rollout", Duration::from_secs(20), |p| {
        p["rollout"]["to"]["sha256"] == v2.as_str()
    })
    .await;
    // Right after the push: down for longer than the 10 s ACK deadline.
    bed.mesh
        .control_plane
        .kill_and_restart_after(Duration::from_secs(12))
        .await
        .expect("restarted after a long downtime");
    let mut kills = 1;
    let mut during_rollout = 1;
    while kills < KILLS {
        during_rollout += usize::from(kill_at_random(&mut bed, &mut schedule).await);
        kills += 1;
    }
    let done = bed
        .wait_for("v2 promoted", Duration::from_secs(120), |p| {
            p["last_good"]["sha256"] == v2.as_str()
        })
        .await;
    assert!(
        done["quarantine"].as_object().is_none_or(|q| q.is_empty()),
        "no healthy build quarantined: {done}"
    );
    bed.wait_everywhere(&v2, "good-v2", Duration::from_secs(30))
        .await;

    // A bad build, with the control plane killed a few more times while it rolls out.
    let (bad, _) = bed.publish("status-500").expect("publish bad");
    bed.wait_for("the bad rollout", Duration::from_secs(20), |p| {
        p["rollout"]["to"]["sha256"] == bad.as_str()
    })
    .await;
    for _ in 0..4 {
        during_rollout += usize::from(kill_at_random(&mut bed, &mut schedule).await);
        kills += 1;
    }
    let ended = bed
        .wait_for("the bad build quarantined", Duration::from_secs(120), |p| {
            p["quarantine"]
                .as_object()
                .is_some_and(|q| q.keys().any(|k| k.starts_with(&bad)))
        })
        .await;
    assert_eq!(ended["last_good"]["sha256"], v2.as_str(), "{ended}");
    let quarantined: Vec<&String> = ended["quarantine"]
        .as_object()
        .map(|q| q.keys().collect())
        .unwrap_or_default();
    assert_eq!(quarantined.len(), 1, "only the bad build: {quarantined:?}");
    assert!(!quarantined[0].starts_with(&good) && !quarantined[0].starts_with(&v2));
    bed.wait_everywhere(&v2, "good-v2", Duration::from_secs(30))
        .await;
    println!(
        "chaos: {kills} kills ({during_rollout} while a rollout was in progress), 0 healthy builds quarantined, bad build rolled back"
    );
}
