//! `bench-rollback`: rollback latency, from the bad build's rename into the watched folder to
//! the last good version ACKed and serving on both Envoys, for a build Envoy NACKs (acceptance
//! gate) and for one that answers 500 (traffic gate). A fresh mesh per trial, so quarantine and
//! history never carry over.

use std::time::Duration;

use anyhow::Context;
use e2e::rollout::RolloutMesh;

/// The test policy's gates (look every 1 s, 2 failing looks), with no settle time, so the
/// traffic gate's bound is look interval × k + one flush.
const BENCH_POLICY: &str = r#"{
  "steps": [
    {"nodes": 1, "minDuration": "3s", "minRequests": 50},
    {"percent": 100, "minDuration": "2s", "minRequests": 50}
  ],
  "bake": "2s", "ackDeadline": "10s", "crashWindow": "30s", "lookInterval": "1s",
  "failingLooks": 2, "settle": "0s", "metricsStaleAfter": "4s", "historyWindow": "60s",
  "stepDeadline": "60s", "traffic": {"minSamples": 30}
}"#;

fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let trials: usize = std::env::args()
        .skip_while(|a| a != "--trials")
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("--trials N")?
        .unwrap_or(5);
    let cases = [
        (
            "NACK (configure-fails)",
            "configure-fails",
            "acceptance",
            Duration::from_secs(2),
        ),
        (
            "5xx (status-500)",
            "status-500",
            "traffic",
            Duration::from_secs(3),
        ),
    ];
    println!("| case | gate | trials | median ms | max ms | goal ms |");
    println!("|---|---|---|---|---|---|");
    for (name, variant, gate, goal) in cases {
        let mut latencies = Vec::new();
        for _ in 0..trials {
            let bed = RolloutMesh::start_with_policy(BENCH_POLICY, false).await?;
            let good = bed.deploy_first("good").await?;
            latencies.push(bed.expect_rollback(variant, &good, gate).await);
        }
        latencies.sort();
        println!(
            "| {name} | {gate} | {trials} | {} | {} | {} |",
            median(&latencies).as_millis(),
            latencies.last().copied().unwrap_or_default().as_millis(),
            goal.as_millis()
        );
    }
    Ok(())
}
