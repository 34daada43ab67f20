//! `meshplug serve --store etcd://…`: several replicas on one etcd cluster. Every replica
//! serves xDS and the admin API to whoever connects; only the leader decides (rollout steps,
//! rollbacks, quarantine, controls, ingest of new builds), and every write it makes is fenced
//! by its term (`meshplug-replicas`).
//!
//! - [`Replica::join`] connects, joins with a membership lease and opens the engine's store.
//! - `campaign`: campaigns; on winning, the engine leads through a fenced [`EtcdState`]; on
//!   losing the lease or having a write fenced, it follows again.
//! - `watch`: one prefix watch of the whole cluster state: the leader key, the members, each
//!   replica's nodes (the leader decides on them), the rollout records and the decision log
//!   (a follower serves and shows them), with the artifacts they name fetched from a peer.
//! - `relay`: a follower sends its proxies' stats flushes to the leader.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use meshplug_replicas::{Etcd, Membership};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::rollout::Engine;
use crate::rollout::engine::Role;
use crate::rollout::state::etcd::EtcdState;
use crate::store::Store;
use crate::tls::ClientTls;

mod artifacts;
mod campaign;
mod metrics;
mod relay;
pub use relay::Flushes;
mod watch;

pub use metrics::ReplicaMetrics;

/// Where the replicas keep their state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// etcd's client endpoints, `host:port`.
    pub endpoints: Vec<String>,
    /// The key prefix the replicas share.
    pub prefix: String,
    /// This replica's id; default: the host name and the admin port.
    pub id: Option<String>,
    /// The leader's and every member's lease.
    pub lease: Duration,
}

impl ReplicaConfig {
    /// Parses `etcd://host:port[,host:port…][/prefix]` (prefix default `/meshplug`).
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::NotReplicated(format!(
                "--store {url:?}: {why}; expected etcd://host:port[,host:port…][/prefix]"
            ))
        };
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("not an etcd:// URL"))?;
        let (hosts, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/meshplug"),
        };
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect();
        if endpoints.is_empty() {
            return Err(bad("no endpoint"));
        }
        if let Some(bad_host) = endpoints.iter().find(|h| !h.contains(':')) {
            return Err(bad(&format!("{bad_host:?} has no port")));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Err(bad("the prefix is empty"));
        }
        Ok(Self {
            endpoints,
            prefix: prefix.to_string(),
            id: None,
            lease: Duration::from_secs(3),
        })
    }
}

/// A replica as the others see it: `members/<id>`, under its membership lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id.
    pub id: String,
    /// Its admin API (`http://host:port`, or `https://`).
    pub admin: String,
    /// Its artifact service, where peers fetch a sha they lack.
    pub artifacts: Option<String>,
    /// Its ADS address.
    pub xds: String,
    /// When it started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// Who leads, in which term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderView {
    /// The leader's replica id.
    pub id: String,
    /// Its term (the leader key's create revision).
    pub term: i64,
    /// Its admin API, when it is a member this replica knows.
    pub admin: Option<String>,
}

/// What this replica knows of the cluster, for `/api/v1/replicas` and the relay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicasView {
    /// This replica's id.
    pub me: String,
    /// Whether it leads.
    pub role: Role,
    /// Who leads; `None` while nobody does.
    pub leader: Option<LeaderView>,
    /// Every replica, by id.
    pub members: BTreeMap<String, Member>,
    /// The nodes connected to each replica, by replica id.
    pub nodes: BTreeMap<String, Vec<String>>,
}

/// The view, shared with the admin API.
pub type SharedView = Arc<RwLock<ReplicasView>>;

/// This process as one replica.
#[derive(Debug)]
pub struct Replica {
    /// Drives every etcd connection (see [`EtcdRuntime`]).
    runtime: EtcdRuntime,
    etcd: Etcd,
    id: String,
    lease: Duration,
    membership: Arc<Membership>,
    view: SharedView,
    metrics: Arc<ReplicaMetrics>,
    /// Fenced writes refused, counted by the engine's store.
    fenced: Arc<AtomicU64>,
}

/// What the replica's tasks work on.
#[derive(Debug, Clone)]
pub struct ReplicaParts {
    /// The engine.
    pub engine: Arc<Mutex<Engine>>,
    /// This replica's artifact store.
    pub store: Store,
    /// TLS to peers' artifact services and the leader's admin API.
    pub peer_tls: Option<ClientTls>,
    /// The admin token, sent to the leader with relayed flushes.
    pub token: Option<String>,
    /// The largest artifact fetched from a peer.
    pub max_artifact_bytes: u64,
    /// The watched artifacts folder (a replica taking the lead looks there for a build it
    /// lacks).
    pub folder: std::path::PathBuf,
    /// Where the leader archives the decisions that leave etcd (`<data>/rollouts/`).
    pub archive: std::path::PathBuf,
    /// The catalog in force, which a follower takes from the leader; and which of its
    /// manifests count in this mode.
    pub manifests: (
        crate::catalog::SharedCatalog,
        meshplug_core::rollout::placement::Governs,
    ),
}

impl Replica {
    /// Connects to etcd and joins as `id` (a membership lease kept alive).
    pub async fn join(config: &ReplicaConfig, id: String) -> Result<Self, Error> {
        if id.is_empty() || id.contains('/') {
            return Err(Error::NotReplicated(format!(
                "replica id {id:?}: it must be non-empty and without '/' (it names etcd keys)"
            )));
        }
        let runtime = EtcdRuntime::start()?;
        let (endpoints, prefix) = (config.endpoints.clone(), config.prefix.clone());
        let etcd = runtime
            .handle()
            .spawn(async move { Etcd::connect(&endpoints, &prefix).await })
            .await
            .map_err(|e| Error::NotReplicated(format!("connecting to etcd: {e}")))??;
        // Joined on the etcd runtime, so the membership's keep-alive runs there: the serving
        // runtime's workers may all wait for the engine lock while etcd is slow.
        let (member_etcd, lease) = (etcd.clone(), config.lease);
        let membership = runtime
            .handle()
            .spawn(async move { member_etcd.join(lease).await })
            .await
            .map_err(|e| Error::NotReplicated(format!("joining: {e}")))??;
        let membership = Arc::new(membership);
        let view = ReplicasView {
            me: id.clone(),
            role: Role::Follower,
            ..ReplicasView::default()
        };
        tracing::info!(replica = %id, endpoints = ?config.endpoints, prefix = %config.prefix,
            "joined the replicas");
        Ok(Self {
            runtime,
            etcd,
            id,
            lease: config.lease,
            membership,
            view: Arc::new(RwLock::new(view)),
            metrics: Arc::default(),
            fenced: Arc::default(),
        })
    }

    /// This replica's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its metrics (register them with [`ReplicaMetrics::registered_in`]).
    pub fn metrics(&self) -> &ReplicaMetrics {
        &self.metrics
    }

    /// The view, for the admin API.
    pub fn view(&self) -> SharedView {
        Arc::clone(&self.view)
    }

    /// The engine's store while following: reads the leader's state, writes this replica's
    /// nodes, and archives to `archive` the decisions that leave its recent window (so every
    /// replica serves what it saw). Call from the multi-threaded runtime.
    pub fn follower_store(&self, archive: &std::path::Path) -> Result<EtcdState, Error> {
        let membership = Arc::clone(&self.membership);
        EtcdState::follower(
            self.etcd.clone(),
            membership,
            &self.id,
            self.runtime.handle(),
        )?
        .archiving(archive, crate::rollout::state::etcd::RECENT)
    }

    /// A follower store that read nothing yet (etcd did not answer), archiving to `archive`
    /// when it can be opened.
    pub(crate) fn empty_follower_store(&self, archive: &std::path::Path) -> EtcdState {
        let empty = || {
            EtcdState::unloaded_follower(self.etcd.clone(), Arc::clone(&self.membership), &self.id)
                .on_runtime(self.runtime.handle())
                .with_call_timeout(self.lease)
        };
        empty()
            .archiving(archive, crate::rollout::state::etcd::RECENT)
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "opening the decision archive: not archiving");
                empty()
            })
    }

    fn set_role(&self, role: Role) {
        self.update_view(|view| view.role = role);
    }

    fn update_view(&self, change: impl FnOnce(&mut ReplicasView)) {
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        change(&mut view);
        self.metrics
            .fenced_total(self.fenced.load(std::sync::atomic::Ordering::Relaxed));
    }

    /// The leader's admin API, if a leader is known and it is not this replica.
    fn leader_admin(&self) -> Option<String> {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        let leader = view.leader.as_ref()?;
        (leader.id != self.id)
            .then(|| leader.admin.clone())
            .flatten()
    }

    /// Publishes this replica's addresses (`members/<id>`).
    pub async fn announce(&self, member: &Member) -> Result<(), Error> {
        let bytes = serde_json::to_vec(member)?;
        self.membership
            .put(&format!("members/{}", self.id), &bytes)
            .await?;
        Ok(())
    }

    /// Runs the watch, the campaign and the relay until `stop`. `leading` says when this
    /// replica leads (serve ingests builds only then).
    pub fn start(
        self: Arc<Self>,
        parts: ReplicaParts,
        leading: tokio::sync::watch::Sender<bool>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let remirror = Arc::new(tokio::sync::Notify::new());
        vec![
            tokio::spawn(watch::run(
                Arc::clone(&self),
                parts.clone(),
                Arc::clone(&remirror),
                stop.clone(),
            )),
            tokio::spawn(campaign::run(
                Arc::clone(&self),
                parts.clone(),
                (leading, remirror),
                stop.clone(),
            )),
            tokio::spawn(relay::run(self, parts, stop)),
        ]
    }
}

/// The runtime that drives etcd's connections. The engine's store calls block their thread
/// while holding the engine lock (`block_in_place`); if the runtime serving xDS also drove
/// etcd's sockets, its workers could all be waiting for that lock and nothing would ever
/// finish the etcd call. Its own two threads always can.
#[derive(Debug)]
struct EtcdRuntime(Option<tokio::runtime::Runtime>);

impl EtcdRuntime {
    fn start() -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("meshplug-etcd")
            .enable_all()
            .build()
            .map_err(|e| Error::NotReplicated(format!("starting the etcd runtime: {e}")))?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            // Only `drop` takes it.
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for EtcdRuntime {
    fn drop(&mut self) {
        // Dropped from async code: a plain drop would block, which tokio forbids there.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// This host's name, for a default replica id.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "replica".to_string())
}

#[cfg(test)]
mod tests;
