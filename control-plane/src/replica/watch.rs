//! One prefix watch of the cluster state, applied to this replica: the leader key and the
//! members (the view), the other replicas' nodes (the leader decides on them), the rollout
//! records (a follower serves them, once it holds every artifact they name) and the decision
//! log (a follower shows it). On a lost history the watch hands a full read, which replaces
//! everything: applied to an unchanged state, it changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use meshplug_core::nodes::Node;
use meshplug_replicas::{Change, WatchEvent};
use tokio::sync::Notify;
use tokio::sync::watch::Receiver;

use super::{LeaderView, Member, Replica, ReplicaParts};
use crate::agent::Fetcher;
use crate::catalog::{Catalog, CatalogRecord};
use crate::ingest::unix_ms;
use crate::rollout::Engine;
use crate::rollout::state::etcd::CATALOG_KEY;
use crate::rollout::state::{Decision, PluginRecord, Release};

/// The cluster state as the watch last saw it.
#[derive(Debug, Default)]
struct Cluster {
    leader: Option<(String, i64)>,
    members: BTreeMap<String, Member>,
    nodes: BTreeMap<String, BTreeMap<String, Node>>,
    plugins: BTreeMap<String, PluginRecord>,
    /// Decisions logged since the last settle, in order.
    decisions: Vec<Decision>,
    /// Replicas whose nodes changed since the last settle.
    nodes_changed: BTreeSet<String>,
    /// The records changed (or must be served again) and are not served yet.
    plugins_changed: bool,
    /// The manifests in force, as the leader saved them (none in folder mode).
    catalog: Option<CatalogRecord>,
    /// What this replica placed last; `None`: nothing yet, or it must be placed again (it
    /// stopped leading). A full read that finds the same catalog places nothing.
    placed: Option<Option<CatalogRecord>>,
}

impl Cluster {
    fn apply(&mut self, me: &str, change: Change) {
        let (key, value, revision) = match change {
            Change::Put {
                key,
                value,
                revision,
            } => (key, Some(value), revision),
            Change::Delete { key, revision } => (key, None, revision),
        };
        let (kind, name) = key.split_once('/').unwrap_or((key.as_str(), ""));
        match (kind, value) {
            ("leader", Some(id)) => {
                self.leader = Some((String::from_utf8_lossy(&id).into_owned(), revision));
            }
            ("leader", None) => self.leader = None,
            ("members", Some(bytes)) => {
                if let Some(member) = parse::<Member>(&key, &bytes) {
                    self.members.insert(name.to_string(), member);
                }
            }
            ("members", None) => {
                self.members.remove(name);
            }
            ("nodes", value) => {
                let Some((replica, node)) = name.split_once('/') else {
                    return;
                };
                if replica == me {
                    return;
                }
                let held = self.nodes.entry(replica.to_string()).or_default();
                match value.and_then(|bytes| parse(&key, &bytes)) {
                    Some(record) => held.insert(node.to_string(), record),
                    None => held.remove(node),
                };
                if held.is_empty() {
                    self.nodes.remove(replica);
                }
                self.nodes_changed.insert(replica.to_string());
            }
            ("plugins", value) => {
                match value.and_then(|bytes| parse(&key, &bytes)) {
                    Some(record) => self.plugins.insert(name.to_string(), record),
                    None => self.plugins.remove(name),
                };
                self.plugins_changed = true;
            }
            ("log", Some(bytes)) => self.decisions.extend(parse::<Decision>(&key, &bytes)),
            (CATALOG_KEY, value) => self.catalog = value.and_then(|bytes| parse(&key, &bytes)),
            _ => {}
        }
    }

    /// Replaces everything with a full read (`leader`: who leads, read with its term).
    fn reset(&mut self, me: &str, state: BTreeMap<String, Vec<u8>>, leader: Option<(String, i64)>) {
        let before: BTreeSet<String> = self.nodes.keys().cloned().collect();
        self.members.clear();
        self.nodes.clear();
        self.plugins.clear();
        self.catalog = None;
        for (key, value) in state {
            if key.starts_with("log/") {
                continue; // The engine's store read the log when it opened.
            }
            self.apply(
                me,
                Change::Put {
                    key,
                    value,
                    revision: 0,
                },
            );
        }
        self.leader = leader;
        self.nodes_changed.extend(before);
        self.plugins_changed = true;
    }

    /// Every release a follower may serve: last good, and a rollout's both sides.
    fn served_releases(&self) -> impl Iterator<Item = &Release> {
        self.plugins.values().flat_map(|record| {
            let rolling = record
                .rollout
                .iter()
                .flat_map(|r| [Some(&r.to), r.from.as_ref()]);
            record.last_good.iter().chain(rolling.flatten())
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes)
        .inspect_err(|err| tracing::warn!(key, error = %err, "unreadable value in etcd: skipped"))
        .ok()
}

/// Watches until `stop`; `remirror` asks for the records to be served again (this replica
/// just stopped leading).
pub(super) async fn run(
    replica: Arc<Replica>,
    parts: ReplicaParts,
    remirror: Arc<Notify>,
    mut stop: Receiver<bool>,
) {
    let fetcher = match Fetcher::with_tls(
        parts.store.dir(),
        None,
        parts.max_artifact_bytes,
        parts.peer_tls.clone(),
    ) {
        Ok(fetcher) => fetcher,
        Err(err) => {
            tracing::error!(error = %err, "replica: no artifact fetcher; peers' artifacts cannot be fetched");
            return;
        }
    };
    let mut cluster = Cluster::default();
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    'restart: loop {
        let Some(revision) = read_all(&replica, &mut cluster, &mut stop).await else {
            return;
        };
        let mut watch = replica.etcd.watch_from("", revision);
        loop {
            settle(&replica, &parts, &fetcher, &mut cluster).await;
            let restarts = watch.restarts();
            tokio::select! {
                event = watch.next() => match event {
                    Ok(WatchEvent::Changes(changes)) => {
                        tracing::debug!(changes = changes.len(), revision = watch.revision(), "replica watch");
                        for change in changes {
                            cluster.apply(&replica.id, change);
                        }
                    }
                    Ok(WatchEvent::Reset { state, .. }) => {
                        let leader = replica.etcd.leader().await.ok().flatten();
                        cluster.reset(&replica.id, state, leader);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, revision = watch.revision(),
                            "replica watch lost: resuming from the last revision seen");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => return,
                        }
                        if watch.restarts() > restarts + 50 {
                            continue 'restart;
                        }
                    }
                },
                () = remirror.notified() => {
                    cluster.plugins_changed = true;
                    cluster.placed = None;
                }
                _ = retry.tick() => {}
                _ = stop.changed() => return,
            }
            replica
                .metrics
                .watch_restarts(watch.restarts().saturating_sub(restarts));
        }
    }
}

/// A full read into `cluster`, retried until etcd answers; `None` on `stop`.
async fn read_all(
    replica: &Replica,
    cluster: &mut Cluster,
    stop: &mut Receiver<bool>,
) -> Option<i64> {
    loop {
        // The leader is read after the state: a change between the two reads arrives through
        // the watch (which starts after the state's revision) as well, so nothing is missed.
        let read = async {
            let (state, revision) = replica.etcd.snapshot("").await?;
            let leader = replica.etcd.leader().await?;
            Ok::<_, meshplug_replicas::Error>((leader, state, revision))
        };
        match read.await {
            Ok((leader, state, revision)) => {
                cluster.reset(&replica.id, state, leader);
                return Some(revision);
            }
            Err(err) => tracing::warn!(error = %err, "replica: reading the cluster state"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return None,
        }
    }
}

/// Applies what changed to the engine and the view.
async fn settle(replica: &Replica, parts: &ReplicaParts, fetcher: &Fetcher, cluster: &mut Cluster) {
    let now_ms = unix_ms();
    let decides = {
        let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
        for id in std::mem::take(&mut cluster.nodes_changed) {
            let nodes = cluster.nodes.get(&id).cloned().unwrap_or_default();
            engine.set_remote_nodes(&id, nodes, now_ms);
        }
        for decision in cluster.decisions.drain(..) {
            engine.mirror_decision(decision);
        }
        if !engine.decides() && cluster.placed.as_ref() != Some(&cluster.catalog) {
            place_catalog(&mut engine, parts, cluster.catalog.as_ref());
            cluster.placed = Some(cluster.catalog.clone());
        }
        engine.decides()
    };
    if cluster.plugins_changed && !decides && fetch_missing(cluster, fetcher).await {
        let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
        engine.mirror(cluster.plugins.clone());
        cluster.plugins_changed = false;
    }
    replica.update_view(|view| {
        view.leader = cluster.leader.as_ref().map(|(id, term)| LeaderView {
            id: id.clone(),
            term: *term,
            admin: cluster.members.get(id).map(|m| m.admin.clone()),
        });
        view.members.clone_from(&cluster.members);
        view.nodes = cluster
            .nodes
            .iter()
            .map(|(id, nodes)| {
                let held = nodes.values().filter(|n| n.connected).map(|n| n.id.clone());
                (id.clone(), held.collect())
            })
            .collect();
    });
}

/// A follower places the manifests the leader saved (an empty catalog when it saved none)
/// and shows them on its API.
fn place_catalog(engine: &mut Engine, parts: &ReplicaParts, record: Option<&CatalogRecord>) {
    let (shared, governs) = &parts.manifests;
    let catalog = Arc::new(record.map(Catalog::from_record).unwrap_or_default());
    *shared.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&catalog);
    engine.mirror_catalog(catalog, *governs);
}

/// Fetches what the records name and this replica lacks, the leader first; says whether
/// every artifact is here.
async fn fetch_missing(cluster: &Cluster, fetcher: &Fetcher) -> bool {
    let leader = cluster.leader.as_ref().map(|(id, _)| id.as_str());
    let peers = super::artifacts::peers(cluster.members.values(), leader);
    super::artifacts::fetch(cluster.served_releases(), &peers, fetcher)
        .await
        .is_empty()
}
