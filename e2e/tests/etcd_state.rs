//! The engine's rollout state on a real three-member etcd cluster (`EtcdState`): what the
//! leader saves (rollout records, decisions, its up mark, the manifests in force), the next leader loads, decision log
//! and sequence included; once replaced, the old leader's saves and appends are refused and
//! change nothing; the records of a plugin that is gone are deleted with the save that drops it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use e2e::etcd::EtcdCluster;
use meshplug::catalog::CatalogRecord;
use meshplug::rollout::state::etcd::EtcdState;
use meshplug::rollout::state::{Decision, PluginRecord, Release, RolloutStore};
use meshplug_replicas::Etcd;

const TTL: Duration = Duration::from_secs(2);
const PREFIX: &str = "/meshplug-state";

fn decision(seq: u64, action: &str) -> Decision {
    Decision {
        seq,
        at_ms: 1_000 + seq,
        plugin: "authz".into(),
        rollout: "authz-r1".into(),
        from: None,
        to: "v2".into(),
        stage: None,
        action: action.into(),
        gate: None,
        reason: format!("decision {seq}"),
        canary_size: 0,
        canary: Vec::new(),
        baseline: Vec::new(),
        canary_totals: None,
        baseline_totals: None,
        baseline_kind: None,
        term: None,
    }
}

fn catalog(tag: &str) -> CatalogRecord {
    CatalogRecord {
        texts: BTreeMap::from([("plugins/p.yaml".to_string(), format!("# {tag}"))]),
        files: BTreeMap::new(),
    }
}

fn plugins(tags: &[&str]) -> BTreeMap<String, PluginRecord> {
    tags.iter()
        .map(|tag| {
            let record = PluginRecord {
                last_good: Some(Release::for_tests(tag)),
                publishes: 1,
                ..PluginRecord::default()
            };
            (format!("plugin-{tag}"), record)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_leader_loads_what_the_last_saved_and_a_stale_one_changes_nothing() {
    let etcd = EtcdCluster::start(3).await.expect("etcd cluster");
    let connect = || async {
        Etcd::connect(&etcd.endpoints(), PREFIX)
            .await
            .expect("connect")
    };
    let (a, b) = (connect().await, connect().await);
    let leader_a = Arc::new(a.campaign("replica-a", TTL).await.expect("a leads"));
    let mut state_a = EtcdState::open(a.clone(), Arc::clone(&leader_a), "replica-a").expect("open");
    assert!(
        state_a.load_plugins().expect("load").is_empty(),
        "a first start"
    );
    state_a.save_plugins(&plugins(&["a", "b"])).expect("save");
    for seq in 1..=3 {
        state_a.append(&decision(seq, "look")).expect("append");
    }
    state_a.mark_alive(42_000).expect("alive");
    state_a.save_catalog(&catalog("a")).expect("catalog");

    leader_a.stop_keepalive();
    let leader_b = Arc::new(
        tokio::time::timeout(TTL * 5, b.campaign("replica-b", TTL))
            .await
            .expect("b leads once a's lease is gone")
            .expect("campaign"),
    );
    let mut state_b = EtcdState::open(b.clone(), Arc::clone(&leader_b), "replica-b").expect("open");
    assert_eq!(state_b.load_plugins().expect("load"), plugins(&["a", "b"]));
    assert_eq!(state_b.last_seq(), 3);
    let reasons: Vec<String> = state_b.recent().map(|d| d.reason.clone()).collect();
    assert_eq!(reasons, ["decision 1", "decision 2", "decision 3"]);
    assert_eq!(state_b.last_alive_ms(), Some(42_000));

    // a comes back: every write of its is refused.
    let stale = state_a.save_plugins(&plugins(&["stale"]));
    assert!(
        matches!(
            stale,
            Err(meshplug::Error::Replicas(
                meshplug_replicas::Error::Fenced { .. }
            ))
        ),
        "{stale:?}"
    );
    let dup = state_a.append(&decision(4, "stale"));
    assert!(dup.is_err(), "a stale leader cannot log: {dup:?}");
    let placed = state_a.save_catalog(&catalog("stale"));
    assert!(
        placed.is_err(),
        "a stale leader cannot place manifests: {placed:?}"
    );
    assert_eq!(state_b.load_plugins().expect("load"), plugins(&["a", "b"]));
    let (held, _) = b.snapshot("").await.expect("read");
    let saved: CatalogRecord = serde_json::from_slice(&held["catalog"]).expect("catalog");
    assert_eq!(
        saved,
        catalog("a"),
        "the manifests a saved, not the stale ones"
    );

    // b goes on: its decision 4 and a save that drops plugin-a.
    state_b.append(&decision(4, "advance")).expect("append");
    state_b.save_plugins(&plugins(&["b"])).expect("save");
    let state_c = EtcdState::open(b, leader_b, "replica-b").expect("reopen");
    assert_eq!(state_c.load_plugins().expect("load"), plugins(&["b"]));
    let actions: Vec<String> = state_c.recent().map(|d| d.action.clone()).collect();
    assert_eq!(
        actions,
        ["look", "look", "look", "advance"],
        "no gap, no duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_that_leave_etcd_are_archived_by_the_leader() {
    let etcd = EtcdCluster::start(1).await.expect("etcd");
    let a = Etcd::connect(&etcd.endpoints(), "/meshplug-archive")
        .await
        .expect("connect");
    let leader = Arc::new(a.campaign("replica-a", TTL).await.expect("leads"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = EtcdState::open(a.clone(), Arc::clone(&leader), "replica-a")
        .expect("open")
        .archiving(dir.path(), 2)
        .expect("archive");
    for seq in 1..=4 {
        let logged = [decision(seq, "look")];
        state.save_with(None, &logged).expect("save");
    }
    let (in_etcd, _) = a.snapshot("log").await.expect("read");
    assert_eq!(
        in_etcd.len(),
        2,
        "the newest two stay in etcd: {:?}",
        in_etcd.keys()
    );
    let recent: Vec<u64> = state.recent().map(|d| d.seq).collect();
    assert_eq!(recent, [3, 4]);
    let archived = std::fs::read_to_string(dir.path().join("decisions.jsonl")).expect("archive");
    let seqs: Vec<u64> = archived
        .lines()
        .map(|l| serde_json::from_str::<Decision>(l).expect("a decision").seq)
        .collect();
    assert_eq!(seqs, [1, 2], "the two that left etcd, in order");
    let archive = state.archive_dir().expect("archiving").to_path_buf();
    let served = meshplug::rollout::state::log::read_archived(&archive, "authz", (0, 3), 10)
        .expect("read the archive");
    let served: Vec<u64> = served.iter().map(|d| d.seq).collect();
    assert_eq!(served, [1, 2], "what the API serves before the recent ones");
    let terms: Vec<Option<i64>> = state.recent().map(|d| d.term).collect();
    assert_eq!(
        terms,
        [Some(leader.term()); 2],
        "each decision carries its term"
    );
}
