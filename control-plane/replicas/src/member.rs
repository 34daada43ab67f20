//! A replica's own keys: written under its membership lease, so etcd deletes them when the
//! replica dies or is cut off past the lease. They are not fenced: each replica is the one
//! writer of its own keys (`members/<id>`, `nodes/<id>`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{Client, PutOptions, Txn, TxnOp};
use tokio::task::JoinHandle;

use crate::{Error, Etcd};

/// Operations per transaction of [`Membership::apply`].
pub const BATCH: usize = 100;

/// The keys a replica owns, kept alive by one lease. When the lease is lost (the replica was
/// paused or cut off past it), a new one is granted and every key is written again.
#[derive(Debug)]
pub struct Membership {
    etcd: Etcd,
    state: Arc<Mutex<Owned>>,
    keepalive: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Owned {
    lease: i64,
    /// Every key written, with its last value, to write again under a new lease.
    keys: BTreeMap<String, Vec<u8>>,
}

impl Etcd {
    /// Joins as a member: grants a lease of `ttl`, kept alive every third of it, that every
    /// [`Membership::put`] is written under. Retries an unreachable etcd until it answers.
    pub async fn join(&self, ttl: Duration) -> Result<Membership, Error> {
        let lease = grant(&self.client, ttl).await?;
        let state = Arc::new(Mutex::new(Owned {
            lease,
            keys: BTreeMap::new(),
        }));
        let keepalive = tokio::spawn(keep_member(self.clone(), Arc::clone(&state), ttl));
        Ok(Membership {
            etcd: self.clone(),
            state,
            keepalive,
        })
    }
}

impl Membership {
    /// Writes `value` at `key` (under the prefix) under the membership lease.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.apply(&[(key.to_string(), value.to_vec())], &[]).await
    }

    /// Writes every `(key, value)` and deletes every key in `deletes` (keys under the
    /// prefix) under the membership lease, in transactions of at most [`BATCH`] operations
    /// (etcd's default limit is 128).
    ///
    /// A write still in flight when the lease lapses (etcd out, say) can land after the new
    /// lease rewrote every key, and attach its keys to the old lease, which etcd then
    /// revokes with them. So when the lease changed while writing, the write is made again
    /// under the new one.
    pub async fn apply(&self, puts: &[(String, Vec<u8>)], deletes: &[String]) -> Result<(), Error> {
        let mut lease = {
            let mut owned = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, value) in puts {
                owned.keys.insert(key.clone(), value.clone());
            }
            for key in deletes {
                owned.keys.remove(key);
            }
            owned.lease
        };
        loop {
            self.write(lease, puts, deletes).await?;
            let now = self.lease();
            if now == lease {
                return Ok(());
            }
            tracing::info!(
                old = lease,
                new = now,
                "the membership lease changed during a write: writing again"
            );
            lease = now;
        }
    }

    /// The lease the keys are written under now.
    pub fn lease(&self) -> i64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lease
    }

    async fn write(
        &self,
        lease: i64,
        puts: &[(String, Vec<u8>)],
        deletes: &[String],
    ) -> Result<(), Error> {
        let ops: Vec<TxnOp> = puts
            .iter()
            .map(|(key, value)| {
                let options = PutOptions::new().with_lease(lease);
                TxnOp::put(self.etcd.key(key), value.clone(), Some(options))
            })
            .chain(
                deletes
                    .iter()
                    .map(|key| TxnOp::delete(self.etcd.key(key), None)),
            )
            .collect();
        for batch in ops.chunks(BATCH) {
            let txn = Txn::new().and_then(batch.to_vec());
            crate::leader::again(|| {
                let mut client = self.etcd.client.clone();
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Leaves: the lease is revoked, so every key it holds goes at once.
    pub async fn leave(self) -> Result<(), Error> {
        self.keepalive.abort();
        let lease = self.lease();
        let mut client = self.etcd.client.clone();
        client.lease_revoke(lease).await?;
        Ok(())
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

async fn grant(client: &Client, ttl: Duration) -> Result<i64, Error> {
    let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
    let granted = crate::leader::again(|| {
        let mut client = client.clone();
        async move { client.lease_grant(seconds, None).await }
    })
    .await?;
    Ok(granted.id())
}

/// Keeps the lease alive; when etcd says it is gone, or does not answer within the lease,
/// grants a new one and writes every key again under it.
async fn keep_member(etcd: Etcd, state: Arc<Mutex<Owned>>, ttl: Duration) {
    let every = ttl / 3;
    loop {
        let lease = state.lock().unwrap_or_else(PoisonError::into_inner).lease;
        let mut client = etcd.client.clone();
        let mut last_ok = tokio::time::Instant::now();
        while last_ok.elapsed() < ttl {
            match crate::leader::renew(&mut client, lease, (every, ttl), &mut last_ok).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(lease, error = %err, "keeping the membership lease alive");
                    tokio::time::sleep(every.min(Duration::from_millis(200))).await;
                }
            }
        }
        tracing::warn!(lease, "the membership lease lapsed: joining again");
        while let Err(err) = rejoin(&etcd, &state, ttl).await {
            tracing::warn!(error = %err, "joining again");
            tokio::time::sleep(every.min(Duration::from_millis(500))).await;
        }
    }
}

async fn rejoin(etcd: &Etcd, state: &Mutex<Owned>, ttl: Duration) -> Result<(), Error> {
    let lease = grant(&etcd.client, ttl).await?;
    let keys = {
        let mut owned = state.lock().unwrap_or_else(PoisonError::into_inner);
        owned.lease = lease;
        owned.keys.clone()
    };
    let ops: Vec<TxnOp> = keys
        .into_iter()
        .map(|(key, value)| {
            TxnOp::put(
                etcd.key(&key),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )
        })
        .collect();
    let mut client = etcd.client.clone();
    for batch in ops.chunks(BATCH) {
        client.txn(Txn::new().and_then(batch.to_vec())).await?;
    }
    Ok(())
}
