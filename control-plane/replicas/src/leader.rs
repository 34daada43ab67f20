//! Leader election on an etcd lease, and writes fenced by the leader's term.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};
use tokio::task::JoinHandle;

use crate::Error;

/// A leadership's term: the create revision of the leader key it wrote.
pub type Term = i64;

/// How often a candidate that lost looks again whether the leader key is gone.
const RETRY: Duration = Duration::from_millis(250);

/// A connection to etcd, for the keys under one prefix.
#[derive(Clone)]
pub struct Etcd {
    pub(crate) client: Client,
    prefix: String,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// Connects to the cluster at `endpoints` (`host:port`), for keys under `prefix`.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, Error> {
        // HTTP/2 pings close a connection to a member that stopped answering (paused, or
        // partitioned), so the client reconnects instead of waiting on it: without them a
        // client that saw such a member sent every call to the one endpoint that failed fast.
        // They go out only while a call or stream is open: etcd counts a ping on an idle
        // connection as abuse whatever its settings. etcd must allow one a second
        // (`--grpc-keepalive-min-time=1s`; README, "etcd's settings").
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
            .with_keep_alive_while_idle(false);
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Self {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    fn leader_key(&self) -> String {
        self.key("leader")
    }

    /// `key` under the prefix.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }

    /// Who leads now, and in which term; `None` when nobody does.
    pub async fn leader(&self) -> Result<Option<(String, Term)>, Error> {
        let key = self.leader_key();
        let found = again(|| {
            let mut client = self.client.clone();
            let key = key.clone();
            async move { client.get(key, None).await }
        })
        .await?;
        Ok(found.kvs().first().map(|kv| {
            let id = String::from_utf8_lossy(kv.value()).into_owned();
            (id, kv.create_revision())
        }))
    }

    /// The value at `key` (under the prefix), if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = self.key(key);
        let found = again(|| {
            let mut client = self.client.clone();
            let key = key.clone();
            async move { client.get(key, None).await }
        })
        .await?;
        Ok(found.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// Campaigns as replica `me` until it leads; the leadership lasts while its lease of
    /// `ttl` is kept alive (every third of it). etcd being unreachable (a member down, say)
    /// is waited out: the campaign tries again until it wins; bound it with a timeout.
    pub async fn campaign(&self, me: &str, ttl: Duration) -> Result<Leadership, Error> {
        loop {
            match self.try_to_lead(me, ttl).await {
                Ok(Some(leadership)) => return Ok(leadership),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(replica = me, error = %err, "campaign: etcd unavailable")
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// One attempt: leads if the leader key is absent; `None` when another replica leads.
    async fn try_to_lead(&self, me: &str, ttl: Duration) -> Result<Option<Leadership>, Error> {
        let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let mut client = self.client.clone();
        let lease = client.lease_grant(seconds, None).await?.id();
        let key = self.leader_key();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                me,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        // If the answer is lost after etcd applied it, the next attempt finds the key held
        // (by this lease) and waits for the lease to lapse: slow, never two leaders.
        let won = client.txn(txn).await?;
        if won.succeeded() {
            let term = won.header().map_or(0, |h| h.revision());
            tracing::info!(replica = me, term, "leading");
            return Ok(Some(Leadership::start(
                self.clone(),
                me,
                term,
                (lease, ttl),
            )));
        }
        // Best effort: an unrevoked lease holds nothing and lapses by itself.
        let _ = client.lease_revoke(lease).await;
        Ok(None)
    }
}

/// This replica leads, in `term`, while its lease lives.
#[derive(Debug)]
pub struct Leadership {
    etcd: Etcd,
    me: String,
    term: Term,
    lease: i64,
    lost: Arc<AtomicBool>,
    keepalive: JoinHandle<()>,
}

impl Leadership {
    fn start(etcd: Etcd, me: &str, term: Term, (lease, ttl): (i64, Duration)) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let keepalive = tokio::spawn(keep_alive(
            etcd.client.clone(),
            lease,
            ttl,
            Arc::clone(&lost),
        ));
        Self {
            etcd,
            me: me.to_string(),
            term,
            lease,
            lost,
            keepalive,
        }
    }

    /// The term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether this replica knows it lost the lease (etcd said it expired, or no keep-alive
    /// got through within its time). A `false` here is not a promise: only [`put`]'s fence is.
    ///
    /// [`put`]: Self::put
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Writes `value` at `key` (under the prefix) if, when etcd applies it, this term still
    /// leads; [`Error::Fenced`] otherwise, with nothing written. Returns the write's revision.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<i64, Error> {
        self.fenced(TxnOp::put(self.etcd.key(key), value, None))
            .await
    }

    /// Applies `op` if, when etcd applies it, this term still leads.
    async fn fenced(&self, op: TxnOp) -> Result<i64, Error> {
        self.fenced_all(vec![op]).await
    }

    /// Applies `ops` in one transaction if, when etcd applies it, this term still leads.
    /// Every operation here is a put or a delete of a whole value, so a retry is harmless.
    async fn fenced_all(&self, ops: Vec<TxnOp>) -> Result<i64, Error> {
        let client = self.etcd.client.clone();
        let leader = self.etcd.leader_key();
        let txn = Txn::new()
            .when([Compare::create_revision(
                leader,
                CompareOp::Equal,
                self.term,
            )])
            .and_then(ops);
        // Retried on `Unavailable` (a member down refuses at once): applying these operations
        // twice leaves what applying them once does, and the fence holds on every try.
        let done = again(|| {
            let mut client = client.clone();
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })
        .await?;
        if done.succeeded() {
            return Ok(done.header().map_or(0, |h| h.revision()));
        }
        let now = match self.etcd.leader().await? {
            Some((id, term)) => format!("{id} leads in term {term}"),
            None => "nobody leads".to_string(),
        };
        tracing::warn!(replica = %self.me, term = self.term, %now, "fenced write refused");
        Err(Error::Fenced {
            term: self.term,
            now,
        })
    }

    /// Puts every `(key, value)` and deletes every key in `deletes` (keys under the prefix),
    /// all in one transaction, if this term still leads. etcd takes at most 128 operations
    /// per transaction by default.
    pub async fn apply(
        &self,
        puts: &[(String, Vec<u8>)],
        deletes: &[String],
    ) -> Result<i64, Error> {
        let ops: Vec<TxnOp> = puts
            .iter()
            .map(|(key, value)| TxnOp::put(self.etcd.key(key), value.clone(), None))
            .chain(
                deletes
                    .iter()
                    .map(|key| TxnOp::delete(self.etcd.key(key), None)),
            )
            .collect();
        self.fenced_all(ops).await
    }

    /// Deletes `key` (under the prefix) if this term still leads; [`Error::Fenced`] otherwise.
    pub async fn delete(&self, key: &str) -> Result<i64, Error> {
        self.fenced(TxnOp::delete(self.etcd.key(key), None)).await
    }

    /// Stops keeping the lease alive, as a replica that is paused (SIGSTOP) or cut off from
    /// etcd would: after the lease's time, etcd ends this leadership. For tests.
    #[doc(hidden)]
    pub fn stop_keepalive(&self) {
        self.keepalive.abort();
    }

    /// Gives the leadership up now: the lease is revoked, so the leader key goes at once.
    pub async fn resign(self) -> Result<(), Error> {
        self.keepalive.abort();
        let lease = self.lease;
        again(|| {
            let mut client = self.etcd.client.clone();
            async move { client.lease_revoke(lease).await }
        })
        .await?;
        Ok(())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// Runs an idempotent call (a read, a lease revocation, a fenced write) up to [`ATTEMPTS`]
/// times while etcd answers [`transient`]ly: the client spreads calls over every endpoint, and one whose member
/// is down refuses at once.
pub(crate) async fn again<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(etcd_client::Error::GRpcStatus(status))
                if transient(status.code()) && attempt < ATTEMPTS =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.map_err(Error::from),
        }
    }
}

/// Whether a call that failed with `code` may have failed on its way (a member down, or a
/// connection to it lost): `Unavailable`, and `Unknown`, which a connection reset mid-call
/// (through a proxy, say) surfaces as.
fn transient(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown)
}

/// Tries of an idempotent call.
const ATTEMPTS: u32 = 10;

/// Keeps `lease` alive every third of `ttl`; marks `lost` once etcd says it expired or no
/// keep-alive was answered within `ttl` of the last one that was (an etcd that hangs, paused
/// or partitioned, counts as not answering: every wait is bounded by what is left of `ttl`).
async fn keep_alive(mut client: Client, lease: i64, ttl: Duration, lost: Arc<AtomicBool>) {
    let every = ttl / 3;
    let mut last_ok = tokio::time::Instant::now();
    while last_ok.elapsed() < ttl {
        match renew(&mut client, lease, (every, ttl), &mut last_ok).await {
            Ok(()) => {
                tracing::warn!(lease, "the leader lease expired");
                break;
            }
            Err(err) => {
                tracing::warn!(lease, error = %err, "keeping the leader lease alive");
                tokio::time::sleep(every.min(Duration::from_millis(200))).await;
            }
        }
    }
    lost.store(true, Ordering::Release);
}

/// Renews `lease` every `every` until etcd says it is gone (`Ok`), a request fails, or no
/// answer comes within `ttl` of the last one (`Err`).
pub(crate) async fn renew(
    client: &mut Client,
    lease: i64,
    (every, ttl): (Duration, Duration),
    last_ok: &mut tokio::time::Instant,
) -> Result<(), String> {
    let left = |last_ok: &tokio::time::Instant| ttl.saturating_sub(last_ok.elapsed());
    let unanswered = || format!("etcd did not answer within {ttl:?}");
    let (mut keeper, mut stream) =
        tokio::time::timeout(left(last_ok), client.lease_keep_alive(lease))
            .await
            .map_err(|_| unanswered())?
            .map_err(|e| e.to_string())?;
    loop {
        let answer = async {
            keeper.keep_alive().await?;
            stream.message().await
        };
        match tokio::time::timeout(left(last_ok), answer).await {
            Err(_) => return Err(unanswered()),
            Ok(Err(err)) => return Err(err.to_string()),
            Ok(Ok(Some(reply))) if reply.ttl() > 0 => *last_ok = tokio::time::Instant::now(),
            Ok(Ok(_)) => return Ok(()),
        }
        tokio::time::sleep(every).await;
    }
}
