//! Three `meshplug serve` replicas on a three-member etcd cluster, an Envoy on each, steady
//! traffic, and rollouts in progress while faults are injected one at a time: kill -9 of the
//! leader; SIGSTOP of the leader past its lease, then SIGCONT; kill of an etcd member; an
//! etcd outage for every replica; one replica cut from etcd (through relays); then mixed:
//! with the etcd member still down, one replica paused and another cut at once, one of them
//! the leader. After the bad build's rollback, a fixed one is promoted. A recorder
//! notes every version each replica sent and each Envoy ACKed; the decision log carries each
//! decision's term. Then the history is checked: no gap or duplicate in the log, terms never
//! go back, no rollout step decided twice, no decision while etcd was out, a quarantined
//! version never sent again after its rollback, every build published and every answered
//! control in the log, every Envoy on the final version, and the rollout interrupted by the
//! leader's death finished by the next leader.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::replicas::{LEASE, Observed, ReplicaSet};
use e2e::rollout::PLUGIN;
use serde_json::{Value, json};

const ROLLOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_one_consistent_history_through_faults() {
    let mut set = ReplicaSet::start(3).await.expect("replicas");
    let (first_leader, _) = set.leader(None).await;

    // v1, the first version, everywhere.
    let (v1, v1_rollout) = release(&set, "good").await;
    decided(&set, &v1_rollout, "promote").await;
    set.wait_everywhere(&v1, ROLLOUT).await;

    // Fault 1: the leader is killed while v2 rolls out; the next leader finishes it.
    let (v2, v2_rollout) = release(&set, "good-v2").await;
    set.replicas[first_leader].process().kill();
    let (second_leader, _) = set.leader(Some(first_leader)).await;
    set.kill_and_restart(first_leader).await.expect("restart");
    decided(&set, &v2_rollout, "promote").await;
    set.wait_everywhere(&v2, ROLLOUT).await;

    // Fault 2: the leader is paused past its lease while v3 rolls out, then goes on: the next
    // leader finishes v3; the paused one's writes are fenced.
    let (v3, v3_rollout) = release(&set, "good").await;
    set.replicas[second_leader].process().set_stopped(true);
    set.leader(Some(second_leader)).await;
    set.replicas[second_leader].process().set_stopped(false);
    decided(&set, &v3_rollout, "promote").await;
    set.wait_everywhere(&v3, ROLLOUT).await;

    // Fault 3: an etcd member is killed; v4 rolls out on the other two.
    set.etcd.kill(0);
    let (v4, v4_rollout) = release(&set, "good-v2").await;
    decided(&set, &v4_rollout, "promote").await;
    set.wait_everywhere(&v4, ROLLOUT).await;

    // Manual controls sent to a follower are carried out by the leader.
    let (v5, v5_rollout) = release(&set, "good").await;
    let (leader, _) = set.leader(None).await;
    let follower = (leader + 1) % set.replicas.len();
    control_via(&set, follower, "pause").await;
    control_via(&set, follower, "resume").await;

    // Fault 4: etcd is out for every replica (the two members left are paused) for three
    // leases: every Envoy keeps being served, nothing is decided.
    let before = answered(&set);
    let outage_from = meshplug::ingest::unix_ms();
    set.etcd.set_stopped(1, true);
    set.etcd.set_stopped(2, true);
    tokio::time::sleep(LEASE * 3).await;
    let outage_to = meshplug::ingest::unix_ms();
    let during = answered(&set);
    set.etcd.set_stopped(1, false);
    set.etcd.set_stopped(2, false);
    for (i, (b, d)) in before.iter().zip(&during).enumerate() {
        assert!(
            d > b,
            "envoy-{i} answered nothing while etcd was out ({b} then {d})"
        );
    }
    decided(&set, &v5_rollout, "promote").await;
    set.wait_everywhere(&v5, ROLLOUT).await;

    // Mixed: with an etcd member still down, while v5b rolls out, one replica is paused and
    // another cut from etcd at once, one of them the leader; the third takes over and
    // finishes v5b once both are back.
    let (v5b, v5b_rollout) = release(&set, "good-v2").await;
    let (leader, _) = set.leader(None).await;
    let cut = set.replicas.len() - 1;
    let paused = if leader == cut {
        (leader + 1) % set.replicas.len()
    } else {
        leader
    };
    for relay in &mut set.relays {
        relay.cut();
    }
    set.replicas[paused].process().set_stopped(true);
    tokio::time::sleep(LEASE * 2).await;
    set.replicas[paused].process().set_stopped(false);
    set.leader(Some(leader)).await;
    for relay in &mut set.relays {
        relay.restore().await.expect("restore relay");
    }
    decided(&set, &v5b_rollout, "promote").await;
    set.wait_everywhere(&v5b, ROLLOUT).await;

    // Fault 5: the last replica is cut from etcd while a bad v6 rolls out: it is rolled back
    // and quarantined; the cut replica catches up once it is back (on v5b).
    for relay in &mut set.relays {
        relay.cut();
    }
    let (v6, v6_rollout) = release(&set, "panic").await;
    decided(&set, &v6_rollout, "rollback").await;
    set.wait_for("v6 quarantined", ROLLOUT, |r| quarantined(r, &v6))
        .await;
    for relay in &mut set.relays {
        relay.restore().await.expect("restore relay");
    }
    set.wait_everywhere(&v5b, ROLLOUT).await;

    // The fix, right after the rollback: promoted, the bad version's errors not its baseline.
    let (v7, v7_rollout) = release(&set, "good").await;
    decided(&set, &v7_rollout, "promote").await;
    set.wait_everywhere(&v7, ROLLOUT).await;

    let log = set.decisions().await;
    let history = set.stop_recording();
    check_log(&log, (outage_from + LEASE.as_millis() as u64, outage_to));
    check_builds(&log, &[&v1, &v2, &v3, &v4, &v5, &v5b, &v6, &v7]);
    check_controls(&log);
    check_quarantine(&log, &history, (&v6, &v5b));
    check_takeover(&log, &v2_rollout);
    check_takeover(&log, &v5b_rollout);
}

/// Publishes `testbed-<variant>.wasm` and waits until the log holds the start of its rollout
/// (the log holds only what was saved, unlike a paused leader's rollout record); its sha256
/// and the rollout's id.
async fn release(set: &ReplicaSet, variant: &str) -> (String, String) {
    let last = set
        .decisions()
        .await
        .last()
        .and_then(|d| d["seq"].as_u64())
        .unwrap_or(0);
    let sha = set.publish(variant).expect("publish");
    let start = set
        .wait_decision(&format!("a rollout of {variant} to start"), ROLLOUT, |d| {
            d["action"] == "start"
                && d["seq"].as_u64() > Some(last)
                && d["to"]
                    .as_str()
                    .is_some_and(|to| to.starts_with(sha.as_str()))
        })
        .await;
    let id = start["rollout"].as_str().unwrap_or_default().to_string();
    (sha, id)
}

/// Waits until the log holds `action` for `rollout`.
async fn decided(set: &ReplicaSet, rollout: &str, action: &str) {
    let what = format!("{action} of rollout {rollout}");
    set.wait_decision(&what, ROLLOUT, |d| {
        d["rollout"] == rollout && d["action"] == action
    })
    .await;
}

fn quarantined(record: &Value, sha: &str) -> bool {
    record["quarantine"]
        .as_object()
        .is_some_and(|q| q.keys().any(|version| version.starts_with(sha)))
}

/// The 200s each Envoy answered so far.
fn answered(set: &ReplicaSet) -> Vec<u64> {
    set.traffic
        .iter()
        .map(|t| {
            t.tally()
                .iter()
                .filter(|((_, status), _)| *status == 200)
                .map(|(_, n)| n)
                .sum()
        })
        .collect()
}

/// Sends `action` to `replica` as the CLI would: a follower answers 421 with the leader,
/// and the control goes there.
async fn control_via(set: &ReplicaSet, replica: usize, action: &str) {
    let url = format!("http://{}", set.replicas[replica].addrs.admin);
    let client = meshplug::client::AdminClient::new(&url, None, None).expect("client");
    let message = client
        .control(PLUGIN, action, json!({}))
        .await
        .unwrap_or_else(|e| panic!("{action} via r{replica}: {e}"));
    assert!(!message.is_empty(), "{action}: an answer");
}

/// No gap, no duplicate, terms that never go back, no step decided twice, nothing decided
/// while etcd was out (`outage`, ms).
fn check_log(log: &[Value], outage: (u64, u64)) {
    assert!(!log.is_empty(), "decisions were logged");
    let seqs: Vec<u64> = log.iter().map(|d| d["seq"].as_u64().unwrap_or(0)).collect();
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "a gap or a duplicate in the log: {seqs:?}"
        );
    }
    let mut term = 0;
    let mut steps = BTreeSet::new();
    for d in log {
        let t = d["term"]
            .as_i64()
            .unwrap_or_else(|| panic!("a decision without a term: {d}"));
        assert!(
            t >= term,
            "decision {} in term {t} after term {term}",
            d["seq"]
        );
        term = t;
        let action = d["action"].as_str().unwrap_or_default();
        if ["start", "advance", "promote", "rollback", "rolled_back"].contains(&action) {
            let step = (
                d["rollout"].to_string(),
                action.to_string(),
                d["stage"].to_string(),
            );
            assert!(steps.insert(step.clone()), "decided twice: {step:?}");
        }
        let at = d["at_ms"].as_u64().unwrap_or(0);
        assert!(
            !(outage.0..outage.1).contains(&at),
            "decision {} taken at {at}, while etcd was out ({outage:?})",
            d["seq"]
        );
    }
}

/// Every build reported published started a rollout in the log (`shas`, in order).
fn check_builds(log: &[Value], shas: &[&String]) {
    let starts: Vec<&str> = log
        .iter()
        .filter(|d| d["action"] == "start")
        .filter_map(|d| d["to"].as_str())
        .collect();
    let mut at = 0;
    for sha in shas {
        let found = starts[at..]
            .iter()
            .position(|to| to.starts_with(sha.as_str()));
        let found = found.unwrap_or_else(|| panic!("no start of {sha} in order: {starts:?}"));
        at += found + 1;
    }
}

fn check_controls(log: &[Value]) {
    for action in ["pause", "resume"] {
        assert!(
            log.iter().any(|d| d["action"] == action),
            "the {action} answered 2xx is not in the log"
        );
    }
}

/// After the rollback of `bad`, no replica sent it to any proxy again (`good` was in force
/// before it).
fn check_quarantine(log: &[Value], history: &[Observed], (bad, good): (&str, &str)) {
    let rollback = log
        .iter()
        .find(|d| {
            d["action"] == "rollback" && d["to"].as_str().is_some_and(|to| to.starts_with(bad))
        })
        .unwrap_or_else(|| panic!("no rollback of {bad}"));
    // The recorder polls every 100 ms: what it saw a second after the decision was sent after it.
    let after = rollback["at_ms"].as_u64().unwrap_or(0) + 1000;
    let again: Vec<&Observed> = history
        .iter()
        .filter(|o| o.field == "sent" && o.version.starts_with(bad) && o.at_ms > after)
        .collect();
    assert!(
        again.is_empty(),
        "the quarantined {bad} was sent again: {again:?}"
    );
    // The recorder records what it must: it saw every Envoy ACK the version before.
    for envoy in 0..3 {
        let node = format!("envoy-{envoy}");
        assert!(
            history
                .iter()
                .any(|o| o.node == node && o.field == "acked" && o.version.starts_with(good)),
            "the recorder never saw {node} ACK {good}"
        );
    }
}

/// The rollout the leader's death interrupted was finished by a later term.
fn check_takeover(log: &[Value], rollout: &str) {
    let terms: BTreeSet<i64> = log
        .iter()
        .filter(|d| d["rollout"] == rollout)
        .filter_map(|d| d["term"].as_i64())
        .collect();
    assert!(
        terms.len() >= 2,
        "rollout {rollout} decided in terms {terms:?} only"
    );
    let last = log.iter().rev().find(|d| d["rollout"] == rollout);
    assert_eq!(
        last.map(|d| d["action"].clone()),
        Some(json!("promote")),
        "rollout {rollout} ends promoted by the new leader"
    );
}
