//! A replica's own keys (its members and nodes records) through an etcd outage longer than its
//! membership lease, on a real etcd: the lease lapses, a new one is granted and every key is
//! written again under it. A write made while etcd was out may land after that rewrite, under
//! the old lease, which etcd then revokes with its keys: the write is made again under the new
//! lease. Once the old lease is gone from etcd too, every key is there, under the new lease.
//! (`replicas_history.rs` once lost a replica's node record this way: its proxy's ACK never
//! reached the leader, and a good version was rolled back.)

use std::sync::Arc;
use std::time::Duration;

use e2e::etcd::EtcdCluster;
use e2e::eventually;
use meshplug_replicas::{Etcd, Membership};

const TTL: Duration = Duration::from_secs(2);
const PREFIX: &str = "/meshplug-membership";

fn put(key: &str, value: &str) -> (String, Vec<u8>) {
    (key.to_string(), value.as_bytes().to_vec())
}

/// Writes as the node publisher does: again until etcd takes it (bounded).
async fn publish(member: &Membership, puts: &[(String, Vec<u8>)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(err) = member.apply(puts, &[]).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "etcd never took the write: {err}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `key`'s value and lease, read straight from etcd.
async fn stored(client: &mut etcd_client::Client, key: &str) -> Option<(String, i64)> {
    let answer = client.get(format!("{PREFIX}/{key}"), None).await.ok()?;
    let kv = answer.kvs().first()?;
    Some((String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_ends_under_the_new_lease_after_an_outage_longer_than_the_lease() {
    let etcd = EtcdCluster::start(1).await.expect("etcd");
    let store = Etcd::connect(&etcd.endpoints(), PREFIX)
        .await
        .expect("connect");
    let member = Arc::new(store.join(TTL).await.expect("joins"));
    publish(&member, &[put("nodes/a", "1")]).await;
    let first = member.lease();

    // The fault: etcd out for three leases, with a write in flight the whole time.
    etcd.set_stopped(0, true);
    let writing = tokio::spawn({
        let member = Arc::clone(&member);
        async move { publish(&member, &[put("nodes/a", "2"), put("nodes/b", "1")]).await }
    });
    tokio::time::sleep(TTL * 3).await;
    etcd.set_stopped(0, false);
    writing.await.expect("the write ends");

    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .expect("client");
    eventually(TTL * 10, "the old lease to be gone from etcd", || {
        let mut client = client.clone();
        async move {
            let ttl = client
                .lease_time_to_live(first, None)
                .await
                .map_err(|e| e.to_string())?
                .ttl();
            (ttl < 0)
                .then_some(())
                .ok_or(format!("lease {first}: {ttl} s left"))
        }
    })
    .await;
    let now = member.lease();
    assert_ne!(now, first, "the lease lapsed during the outage: a new one");
    for (key, value) in [("nodes/a", "2"), ("nodes/b", "1")] {
        assert_eq!(
            stored(&mut client, key).await,
            Some((value.to_string(), now)),
            "{key}: the last value written, under the lease in use"
        );
    }
}
