//! Replicas on a real three-member etcd cluster: one leads at a time; a leader paused past its
//! lease (no keep-alive, as under SIGSTOP) is replaced by another with a higher term, and when
//! it comes back its writes are refused by etcd (fenced), not applied; the new leader keeps
//! writing with etcd's own leader killed; a leader that resigns is replaced at once.

use std::time::Duration;

use e2e::etcd::EtcdCluster;
use e2e::eventually;
use meshplug_replicas::{Error, Etcd};

const TTL: Duration = Duration::from_secs(2);
/// A lease that outlives an election among etcd's members (election timeout 1 s, up to about
/// twice that before a vote), as README asks of `--lease-s`: renewals wait for etcd's new
/// leader, and a shorter lease can run out meanwhile (a CI run saw it with 2 s).
const OUTLIVES_ELECTION: Duration = Duration::from_secs(6);
const PREFIX: &str = "/meshplug-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_stale_leader_cannot_write() {
    let mut etcd = EtcdCluster::start(3).await.expect("etcd cluster");
    let connect = || async {
        Etcd::connect(&etcd.endpoints(), PREFIX)
            .await
            .expect("connect")
    };
    let (a, b, c) = (connect().await, connect().await, connect().await);
    let leader_a = a.campaign("replica-a", TTL).await.expect("a leads");
    let mut campaign_b =
        tokio::spawn(async move { b.campaign("replica-b", OUTLIVES_ELECTION).await });
    let waited = tokio::time::timeout(TTL * 2, &mut campaign_b).await;
    assert!(waited.is_err(), "b must not lead while a keeps its lease");
    assert_eq!(
        a.leader().await.expect("leader"),
        Some(("replica-a".to_string(), leader_a.term()))
    );
    leader_a
        .put("rollouts/authz", b"step-1")
        .await
        .expect("a writes");

    // a is paused past its lease: b takes over in a higher term.
    leader_a.stop_keepalive();
    let leader_b = tokio::time::timeout(TTL * 5, campaign_b)
        .await
        .expect("b leads once a's lease is gone")
        .expect("task")
        .expect("campaign");
    assert!(leader_b.term() > leader_a.term(), "terms only grow");
    // a comes back and writes as if it still led: etcd refuses it.
    let stale = leader_a.put("rollouts/authz", b"stale").await;
    match stale {
        Err(Error::Fenced { term, now }) => {
            assert_eq!(term, leader_a.term());
            assert!(now.contains("replica-b"), "{now}");
        }
        other => panic!("a stale leader's write must be fenced: {other:?}"),
    }
    assert_eq!(
        a.get("rollouts/authz").await.expect("read").as_deref(),
        Some(&b"step-1"[..]),
        "nothing of the stale write landed"
    );

    // etcd's own leader dies: the leader still writes once etcd elects another (two of three
    // members are a quorum), and keeps its lease.
    let raft_leader = etcd.raft_leader().await.expect("etcd's leader");
    etcd.kill(raft_leader);
    eventually(
        Duration::from_secs(20),
        "a write with a member down",
        || async {
            leader_b
                .put("rollouts/authz", b"step-2")
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;

    // b resigns: the key goes at once and c leads in a higher term still.
    let term_b = leader_b.term();
    leader_b.resign().await.expect("resign");
    let leader_c = tokio::time::timeout(TTL, c.campaign("replica-c", TTL))
        .await
        .expect("c leads at once after a resignation")
        .expect("campaign");
    assert!(leader_c.term() > term_b);
}
