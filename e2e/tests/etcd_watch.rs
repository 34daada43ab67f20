//! A replica's prefix watch on a real three-member etcd cluster: it reports every change after
//! the revision it starts from, in order; with the etcd member it may be talking to killed, it
//! resumes from the last revision it handed out (nothing repeated, nothing skipped); started
//! from a revision whose history was compacted, it hands the caller a full read instead.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::etcd::EtcdCluster;
use meshplug_replicas::{Change, Etcd, PrefixWatch, WatchEvent};

/// The replica's lease outlasts an etcd re-election (election timeout 1 s, and more on loaded
/// cores): the write after a member is killed is this test's set-up, not a test of failover
/// (`etcd_leadership.rs` is). With 2 s, one CI run lost the lease while etcd re-elected.
const TTL: Duration = Duration::from_secs(6);
const PREFIX: &str = "/meshplug-watch";

/// Collects changes until `n` have arrived (retrying a failed stream), within 20 s.
async fn changes(watch: &mut PrefixWatch, n: usize) -> Vec<Change> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, watch.next()).await {
            Ok(Ok(WatchEvent::Changes(more))) => seen.extend(more),
            Ok(Ok(reset)) => panic!("no history was lost, yet: {reset:?}"),
            Ok(Err(err)) => eprintln!("watch stream failed, resuming: {err}"),
            Err(_) => panic!("only {} of {n} changes in 20 s: {seen:?}", seen.len()),
        }
    }
    seen
}

fn put(key: &str, value: &str) -> (String, Vec<u8>) {
    (key.to_string(), value.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_where_it_was_and_reads_everything_after_a_compaction() {
    let mut etcd = EtcdCluster::start(3).await.expect("etcd cluster");
    let store = Etcd::connect(&etcd.endpoints(), PREFIX)
        .await
        .expect("connect");
    let leader = store.campaign("replica-a", TTL).await.expect("leads");
    let (empty, start) = store.snapshot("state").await.expect("snapshot");
    assert!(empty.is_empty());
    let mut watch = store.watch_from("state", start);
    leader.put("state/a", b"1").await.expect("put a");
    leader.put("state/b", b"2").await.expect("put b");
    leader.delete("state/a").await.expect("delete a");
    let seen = changes(&mut watch, 3).await;
    let keys: Vec<(&str, bool)> = seen
        .iter()
        .map(|c| match c {
            Change::Put { key, .. } => (key.as_str(), true),
            Change::Delete { key, .. } => (key.as_str(), false),
        })
        .collect();
    assert_eq!(keys, [("a", true), ("b", true), ("a", false)], "{seen:?}");

    etcd.kill(0);
    let mut tries = 0;
    let after_kill = loop {
        match leader.put("state/c", b"3").await {
            Ok(revision) => break revision,
            Err(err) if tries < 50 => eprintln!("write with a member down, again: {err}"),
            Err(err) => panic!("no write in 50 tries with a member down: {err}"),
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let resumed = changes(&mut watch, 1).await;
    assert_eq!(
        resumed,
        [Change::Put {
            key: "c".into(),
            value: b"3".to_vec(),
            revision: after_kill,
        }],
        "exactly the write after the last revision seen"
    );

    // History before now is compacted away: a watch from an old revision reads everything.
    let mut client = etcd_client::Client::connect(etcd.endpoints()[1..].to_vec(), None)
        .await
        .expect("client");
    client.compact(after_kill, None).await.expect("compact");
    let mut stale = store.watch_from("state", start);
    let reset = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // With a member down, opening the watch may pick it: the next call tries again.
            match stale.next().await {
                Ok(event) => break event,
                Err(err) => eprintln!("watch stream failed, resuming: {err}"),
            }
        }
    })
    .await
    .expect("answers");
    let expected: BTreeMap<String, Vec<u8>> = [put("b", "2"), put("c", "3")].into_iter().collect();
    match reset {
        WatchEvent::Reset { state, revision } => {
            assert_eq!(state, expected);
            assert!(revision >= after_kill);
            assert_eq!(stale.revision(), revision, "it goes on from the read");
        }
        other => panic!("a compacted history must give a full read: {other:?}"),
    }
}
