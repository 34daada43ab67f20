//! `bench-replicas`: meshplug as three replicas on a three-member etcd cluster (loopback).
//!
//! 1. Failover: a rollout is in progress (its first step lasts an hour); the leader is
//!    SIGKILLed while an operator sends `pause` (or `resume`) to a surviving replica every
//!    100 ms, as the CLI does (a follower answers with the leader's address). Measured: the
//!    time from the kill to that control's decision in a later term (the decision's own
//!    timestamp), and to a replica saying it leads. The killed replica is started again before
//!    the next trial.
//! 2. Push convergence: N simulated ADS nodes spread over three replicas, then all N on one
//!    replica (also on etcd), in one run; each change is a new configuration in the folder;
//!    measured at the nodes from the rename to receipt and to ACK.
//!
//! Usage: bench-replicas [--trials 20] [--nodes 10000] [--changes 3] [--append FILE]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::load::{LoadConfig, LoadRun, percentiles};
use e2e::replicas::ReplicaSet;
use e2e::rollout::PLUGIN;

/// A rollout that stays in its first step, looking every second.
const FAILOVER_POLICY: &str = r#"{
  "steps": [{"nodes": 1, "minDuration": "1h", "minRequests": 50}, {"percent": 100}],
  "bake": "0s", "ackDeadline": "30s", "lookInterval": "1s", "failingLooks": 1000,
  "stepDeadline": "2h", "settle": "0s", "metricsStaleAfter": "1h"
}"#;

/// Every change to every node at once; ACKs reach the leader through the replicas' published
/// nodes, so the deadline is generous.
const PUSH_POLICY: &str = r#"{"steps": [{"percent": 100}], "bake": "0s", "crashWindow": "0s",
  "ackDeadline": "60s", "supersede": true}"#;

struct Args {
    trials: usize,
    nodes: usize,
    changes: usize,
    append: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let args = e2e::bench_args::BenchArgs::from_env();
    let number =
        |name: &str, default: usize| args.number(name, default).map_err(anyhow::Error::msg);
    Ok(Args {
        trials: number("--trials", 20)?,
        nodes: number("--nodes", 10_000)?,
        changes: number("--changes", 3)?,
        append: args.value("--append"),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 and max of `samples`, in ms.
fn p50_max(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
    (ms(p50), ms(samples.last().copied().unwrap_or_default()))
}

/// Failover trials: (kill → next decision, kill → a leader), each sorted.
async fn failover(trials: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut set = ReplicaSet::start_with(3, FAILOVER_POLICY, 3).await?;
    set.publish("good")?;
    set.wait_for("v1", Duration::from_secs(60), |r| !r["last_good"].is_null())
        .await;
    set.publish("good-v2")?;
    set.wait_for("a rollout in progress", Duration::from_secs(60), |r| {
        !r["rollout"].is_null()
    })
    .await;
    let (mut decided, mut led) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        let (leader, term) = set.leader(None).await;
        let killed_at = meshplug::ingest::unix_ms();
        let t0 = Instant::now();
        set.replicas[leader].process().kill();
        let action = if trial % 2 == 0 { "pause" } else { "resume" };
        let survivor = (leader + 1) % set.replicas.len();
        let elected = async {
            let (_, new_term) = set.leader(Some(leader)).await;
            (new_term, t0.elapsed())
        };
        let ((new_term, elected_after), sent) =
            tokio::join!(elected, keep_sending(&set, survivor, action));
        sent?;
        led.push(elected_after);
        let next = set
            .wait_decision("the control's decision", Duration::from_secs(60), |d| {
                d["action"] == action && d["term"].as_i64().is_some_and(|t| t > term)
            })
            .await;
        let at = next["at_ms"].as_u64().context("decision time")?;
        decided.push(Duration::from_millis(at.saturating_sub(killed_at)));
        eprintln!(
            "trial {trial}: r{leader} (term {term}) killed; term {new_term} decided after {} ms",
            at.saturating_sub(killed_at)
        );
        set.kill_and_restart(leader).await?;
        e2e::eventually(
            Duration::from_secs(30),
            "the restarted replica to rejoin",
            || async {
                let view = set
                    .get(leader, "/api/v1/replicas")
                    .await
                    .map_err(|e| e.to_string())?;
                match view["members"].as_object().map_or(0, |m| m.len()) {
                    3 => Ok(()),
                    n => Err(format!("{n} members")),
                }
            },
        )
        .await;
    }
    Ok((decided, led))
}

/// Sends `action` to replica `to` every 100 ms until one is carried out (a 2xx), for 60 s.
async fn keep_sending(set: &ReplicaSet, to: usize, action: &str) -> anyhow::Result<()> {
    let url = format!("http://{}", set.replicas[to].addrs.admin);
    let client = meshplug::client::AdminClient::new(&url, None, None)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.control(PLUGIN, action, serde_json::json!({})).await {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() > deadline => bail!("{action} never carried out: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn config(change: usize) -> String {
    format!(r#"{{"api_keys": ["key-{change}"], "header": "x-api-key"}}"#)
}

/// Push convergence with `nodes` spread over `replicas`: (receipt, ACK) after each change.
async fn push(
    replicas: usize,
    nodes: usize,
    changes: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let set = ReplicaSet::start_with(replicas, PUSH_POLICY, 0).await?;
    let module = wat::parse_str(meshplug_preflight::testing::proxy_wasm_wat(
        "(i32.const 1)",
        "(i32.const 1)",
        "(i32.const 0)",
        "",
    ))?;
    set.publish_file(&format!("{PLUGIN}.json"), config(0).as_bytes())?;
    set.publish_file(&format!("{PLUGIN}.wasm"), &module)?;
    set.wait_for("the first version", Duration::from_secs(60), |r| {
        !r["last_good"].is_null()
    })
    .await;
    let runs: Vec<LoadRun> = (0..replicas)
        .map(|i| {
            LoadRun::start(&LoadConfig {
                target: set.replicas[i].addrs.xds,
                nodes: nodes / replicas,
                resource_names: vec![PLUGIN.into()],
                nack_percent: 0,
                slow_readers: 0,
                id_prefix: format!("sim-r{i}-"),
                fetch: None,
                tls: None,
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while runs.iter().map(LoadRun::nodes_served).sum::<usize>() < nodes / replicas * replicas {
        if Instant::now() > deadline {
            bail!("not every node was served in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut received, mut acked) = (Vec::new(), Vec::new());
    for change in 1..=changes {
        let before: Vec<_> = runs.iter().map(LoadRun::latest_versions).collect();
        let t0 = Instant::now();
        set.publish_file(&format!("{PLUGIN}.json"), config(change).as_bytes())?;
        for (run, before) in runs.iter().zip(&before) {
            let done = run
                .converge(before, t0, Duration::from_secs(180))
                .await
                .with_context(|| format!("change {change} did not converge"))?;
            received.extend(done.received);
            acked.extend(done.acked);
        }
    }
    Ok((received, acked))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (mut decided, mut led) = failover(args.trials).await?;
    let (d50, dmax) = p50_max(&mut decided);
    let (l50, lmax) = p50_max(&mut led);
    let mut rows = String::new();
    for replicas in [3, 1] {
        let (received, acked) = push(replicas, args.nodes, args.changes).await?;
        let (r50, r99, rmax) = percentiles(&received);
        let (a50, a99, amax) = percentiles(&acked);
        writeln!(
            rows,
            "| {replicas} | {} | {r50:.1} / {r99:.1} / {rmax:.1} | {a50:.1} / {a99:.1} / {amax:.1} |",
            args.nodes / replicas * replicas
        )?;
    }
    let stamp = e2e::bench_args::stamp();
    let report = format!(
        "### Replicas on etcd, {stamp}\n\n\
         Three replicas and a three-member etcd cluster on loopback, lease 2 s.\n\n\
         | failover over {trials} trials (SIGKILL of the leader) | p50 | max |\n|---|---|---|\n\
         | kill → an operator's control decided by the next term | {d50:.0} ms | {dmax:.0} ms |\n\
         | kill → a replica says it leads (polled every ~100 ms) | {l50:.0} ms | {lmax:.0} ms |\n\n\
         Push convergence, {changes} changes, ms from the rename of the new configuration:\n\n\
         | replicas | nodes | receipt p50 / p99 / max | ACK p50 / p99 / max |\n|---|---|---|---|\n{rows}",
        trials = args.trials,
        changes = args.changes,
    );
    e2e::bench_args::publish(&report, args.append.as_deref())?;
    Ok(())
}
