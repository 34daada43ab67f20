//! The node model: one record per proxy, the only place a per-node fact lives. Who the proxy
//! said it is (identity), whether it is connected (streams), and for each filter the version
//! desired for it, last sent, ACKed, applied (loaded, and failing or not) and last NACKed.
//!
//! It is fed by [`NodeEvent`]s (the runtime translates xDS stream events into them) and by the
//! rollout engine's [`Nodes::set_desired`]; the admin API, the CLI, the metrics and the engine
//! read it. It is saved as `nodes.json` (see [`Nodes::saved`] and [`Nodes::restore`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The node metadata key that says how a proxy gets its artifacts; `meshplug agent` sets it
/// to [`AGENT_DELIVERY`] on every node it stands in front of.
pub const DELIVERY_KEY: &str = "meshplug.delivery";

/// The [`DELIVERY_KEY`] value of a proxy behind `meshplug agent`.
pub const AGENT_DELIVERY: &str = "agent";

/// How an agent's refusal of a response begins when it could not fetch or verify an
/// artifact: such a refusal is a [`NodeEvent::FetchFailed`], not a NACK of the filter.
pub const FETCH_FAILED_PREFIX: &str = "meshplug-agent: fetch failed: ";

/// How a proxy gets the artifacts its filters load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// From a path on the control plane's disk: the proxy shares it.
    Local,
    /// From the artifact service, through `meshplug agent` on the proxy's host, which
    /// fetches, checks the sha256, caches and points the proxy at its own copy.
    Agent,
}

/// What a proxy said about itself when its stream opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// The Envoy version it reported (`major.minor.patch`).
    pub envoy_version: Option<String>,
    /// Its string metadata.
    pub metadata: BTreeMap<String, String>,
}

/// One filter resource named in a stream event: its name and version label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterVersion {
    /// The filter (ECDS resource) name.
    pub name: String,
    /// The version label.
    pub version: String,
}

/// Something a proxy's stream did with filter configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A response carrying these filters was sent.
    Sent(Vec<FilterVersion>),
    /// The proxy ACKed a response carrying these filters.
    Acked(Vec<FilterVersion>),
    /// The proxy NACKed a response carrying these filters, with Envoy's message.
    Nacked(Vec<FilterVersion>, String),
    /// The proxy's agent could not fetch (or verify) the artifact of these filters, with its
    /// reason; the proxy keeps what it runs and the agent keeps trying.
    FetchFailed(Vec<FilterVersion>, String),
}

/// One proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    #[serde(default)]
    pub cluster: String,
    /// The Envoy version it reported.
    #[serde(default)]
    pub envoy_version: Option<String>,
    /// Its string metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Whether it has an open ADS stream.
    #[serde(default)]
    pub connected: bool,
    /// When its current (or last) stream opened, ms since the Unix epoch.
    #[serde(default)]
    pub connected_since_unix_ms: u64,
    /// Each filter on it, by filter name.
    #[serde(default)]
    pub filters: BTreeMap<String, FilterOnNode>,
    /// The filter slots its listeners hold: the ECDS names it asks for (`None` until it asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<BTreeSet<String>>,
    /// This process's view of its streams; `None` until it connects to this process.
    #[serde(skip)]
    session: Option<Session>,
}

/// A node's streams to this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Session {
    streams: u32,
    disconnected_at_ms: Option<u64>,
}

/// One filter on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOnNode {
    /// The version label the rollout engine wants this node to run.
    pub desired: Option<String>,
    /// The version label last sent.
    pub sent: Option<String>,
    /// The version label last ACKed.
    pub acked: Option<String>,
    /// The version label ACKed and then seen loading (`config_reload` moved with no load
    /// error after it was sent).
    pub applied: Option<String>,
    /// The last NACK.
    pub last_nack: Option<Nack>,
    /// The agent's last failure to fetch a version not ACKed since.
    #[serde(default)]
    pub last_fetch_failure: Option<Nack>,
    /// How many responses carried this filter to the node.
    #[serde(default)]
    pub sends: u64,
    /// The version it runs is loaded but failing: its own traffic is clearly worse than
    /// before, or it reported load errors (see [`Nodes::set_failing`]).
    #[serde(default)]
    pub failing: Option<Failing>,
    /// When a version was last sent, ms (this process only).
    #[serde(skip)]
    sent_at_ms: Option<u64>,
    /// When a clean reload was last reported, ms (this process only).
    #[serde(skip)]
    reloaded_at_ms: Option<u64>,
}

/// A rejected (or, as a fetch failure, not yet fetched) version and the node's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The version label rejected.
    pub version: String,
    /// Envoy's `error_detail` message.
    pub error: String,
    /// When, ms since the Unix epoch.
    #[serde(default)]
    pub at_unix_ms: u64,
}

impl Node {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            cluster: String::new(),
            envoy_version: None,
            metadata: BTreeMap::new(),
            connected: false,
            connected_since_unix_ms: 0,
            filters: BTreeMap::new(),
            slots: None,
            session: None,
        }
    }

    /// The version of `filter` it ACKed last.
    pub fn acked(&self, filter: &str) -> Option<&str> {
        self.filters.get(filter)?.acked.as_deref()
    }

    /// Its last NACK of `filter`.
    pub fn last_nack(&self, filter: &str) -> Option<&Nack> {
        self.filters.get(filter)?.last_nack.as_ref()
    }

    /// The agent's last failure to fetch `filter`, if no version was ACKed since.
    pub fn fetch_failure(&self, filter: &str) -> Option<&Nack> {
        self.filters.get(filter)?.last_fetch_failure.as_ref()
    }

    /// How it gets its artifacts: through an agent when its metadata says so.
    pub fn delivery(&self) -> Delivery {
        match self.metadata.get(DELIVERY_KEY).map(String::as_str) {
            Some(AGENT_DELIVERY) => Delivery::Agent,
            _ => Delivery::Local,
        }
    }

    /// Whether it connected to this process at least once.
    pub fn seen_this_process(&self) -> bool {
        self.session.is_some()
    }

    /// When its last stream to this process closed, if it is disconnected.
    pub fn disconnected_at_ms(&self) -> Option<u64> {
        self.session.and_then(|s| s.disconnected_at_ms)
    }
}

/// Every known proxy, by id.
#[derive(Debug, Clone, Default)]
pub struct Nodes {
    nodes: BTreeMap<String, Node>,
    /// How many of them are connected, kept as they change.
    connected: usize,
    dirty: bool,
    /// The nodes other replicas hold, as each last published them (read-only here: the
    /// replica holding a node's stream owns its facts).
    remote: BTreeMap<String, BTreeMap<String, Node>>,
    /// Each node connected to another replica, and which one (the last to say so).
    remote_connected: BTreeMap<String, String>,
}

impl Nodes {
    /// No proxies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes back the nodes as saved: each is disconnected until it connects again.
    pub fn restore(saved: BTreeMap<String, Node>) -> Self {
        let nodes = saved
            .into_iter()
            .map(|(id, mut node)| {
                node.id.clone_from(&id);
                node.connected = false;
                node.session = None;
                (id, node)
            })
            .collect();
        Self {
            nodes,
            connected: 0,
            dirty: false,
            remote: BTreeMap::new(),
            remote_connected: BTreeMap::new(),
        }
    }

    /// What is saved: every node.
    pub fn saved(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// Whether something changed since [`Nodes::mark_saved`].
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The saved form is on disk.
    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Whether this replica has its own record of `id` (it held, or holds, its stream).
    pub fn holds(&self, id: &str) -> bool {
        self.nodes.contains_key(id)
    }

    /// One node: the record of the replica holding its stream (this one first), else the
    /// last one known.
    pub fn get(&self, id: &str) -> Option<&Node> {
        let local = self.nodes.get(id);
        if local.is_some_and(|n| n.connected) {
            return local;
        }
        let remote = self
            .remote_connected
            .get(id)
            .and_then(|replica| self.remote.get(replica)?.get(id));
        remote
            .or(local)
            .or_else(|| self.remote.values().find_map(|nodes| nodes.get(id)))
    }

    /// Every node, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Every node id.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// The ids of the nodes with an open stream, to this replica or (with replicas) another.
    pub fn connected(&self) -> impl Iterator<Item = &String> {
        let here = self.nodes.values().filter(|n| n.connected).map(|n| &n.id);
        let elsewhere = self
            .remote_connected
            .keys()
            .filter(|id| !self.nodes.get(*id).is_some_and(|n| n.connected));
        here.chain(elsewhere)
    }

    /// How many nodes have an open stream to this replica.
    pub fn connected_count(&self) -> usize {
        self.connected
    }

    /// A stream of `identity` opened at `now_ms`. Returns whether the node had been
    /// connected to this process before and lost every stream (it came back).
    pub fn connect(&mut self, identity: &NodeIdentity, now_ms: u64) -> bool {
        let node = entry(&mut self.nodes, &identity.id);
        let session = node.session.get_or_insert_with(Session::default);
        let came_back = session.disconnected_at_ms.take().is_some();
        session.streams += 1;
        if !node.connected {
            node.connected = true;
            self.connected += 1;
        }
        node.connected_since_unix_ms = now_ms;
        node.cluster.clone_from(&identity.cluster);
        node.envoy_version.clone_from(&identity.envoy_version);
        node.metadata.clone_from(&identity.metadata);
        self.dirty = true;
        came_back
    }

    /// A stream of `id` closed at `now_ms`; the node is disconnected once its last one has.
    pub fn disconnect(&mut self, id: &str, now_ms: u64) {
        let Some(node) = self.nodes.get_mut(id) else {
            return;
        };
        let session = node.session.get_or_insert_with(Session::default);
        session.streams = session.streams.saturating_sub(1);
        if session.streams == 0 && node.connected {
            session.disconnected_at_ms = Some(now_ms);
            node.connected = false;
            self.connected -= 1;
        }
        self.dirty = true;
    }

    /// Applies one stream event of `id` observed at `now_ms`.
    pub fn apply(&mut self, id: &str, event: &NodeEvent, now_ms: u64) {
        let node = entry(&mut self.nodes, id);
        match event {
            NodeEvent::Sent(filters) => {
                for f in filters {
                    let state = node.filters.entry(f.name.clone()).or_default();
                    state.sent = Some(f.version.clone());
                    state.sends += 1;
                    state.sent_at_ms = Some(now_ms);
                    state.forget_failing_other_than(&f.version);
                }
            }
            NodeEvent::Acked(filters) => {
                for f in filters {
                    let state = node.filters.entry(f.name.clone()).or_default();
                    state.acked = Some(f.version.clone());
                    if state
                        .last_fetch_failure
                        .as_ref()
                        .is_some_and(|failure| failure.version == f.version)
                    {
                        state.last_fetch_failure = None;
                    }
                    state.settle();
                }
            }
            NodeEvent::Nacked(filters, error) => {
                refuse(node, filters, error, now_ms, |state, nack| {
                    state.last_nack = Some(nack);
                });
            }
            NodeEvent::FetchFailed(filters, reason) => {
                refuse(node, filters, reason, now_ms, |state, failure| {
                    state.last_fetch_failure = Some(failure);
                });
            }
        }
        self.dirty = true;
    }

    /// The ECDS names node `id` asks for now: the filter slots of its listeners.
    pub fn set_slots(&mut self, id: &str, slots: BTreeSet<String>) {
        if let Some(node) = self.nodes.get_mut(id) {
            self.dirty |= node.slots.as_ref() != Some(&slots);
            node.slots = Some(slots);
        }
    }

    /// A stats flush from `id` showed `filter` reloaded with no load error at `now_ms`: its
    /// ACKed version is applied once a reload followed its send. Returns whether the applied
    /// version changed.
    pub fn reloaded(&mut self, id: &str, filter: &str, now_ms: u64) -> bool {
        let Some(node) = self.nodes.get_mut(id) else {
            return false;
        };
        // Nothing was sent of a filter the node has no entry for: no version to settle.
        let Some(state) = node.filters.get_mut(filter) else {
            return false;
        };
        state.reloaded_at_ms = Some(now_ms);
        let changed = state.settle();
        self.dirty |= changed;
        changed
    }

    /// Sets the version of each filter `id` should run (filters not named run nowhere on it).
    pub fn set_desired(&mut self, id: &str, desired: &BTreeMap<String, String>) {
        let node = entry(&mut self.nodes, id);
        let mut changed = false;
        for (name, state) in &mut node.filters {
            let want = desired.get(name);
            if state.desired.as_ref() != want {
                state.desired = want.cloned();
                changed = true;
            }
        }
        for (name, version) in desired {
            if !node.filters.contains_key(name) {
                let state = FilterOnNode {
                    desired: Some(version.clone()),
                    ..FilterOnNode::default()
                };
                node.filters.insert(name.clone(), state);
                changed = true;
            }
        }
        self.dirty |= changed;
    }

    /// The nodes disconnected for more than `after_ms` at `now_ms`. One saved from before
    /// this process and never back counts as disconnected since `opened_ms`.
    pub fn gone_longer_than(
        &self,
        now_ms: u64,
        after_ms: u64,
        opened_ms: u64,
    ) -> impl Iterator<Item = &String> {
        self.nodes
            .values()
            .filter(move |n| {
                let since = match n.session {
                    Some(session) => session.disconnected_at_ms,
                    None => Some(opened_ms),
                };
                !n.connected && since.is_some_and(|at| now_ms.saturating_sub(at) > after_ms)
            })
            .map(|n| &n.id)
    }

    /// Forgets `id`.
    pub fn forget(&mut self, id: &str) {
        if let Some(node) = self.nodes.remove(id) {
            self.connected -= usize::from(node.connected);
            self.dirty = true;
        }
    }
}

/// Records a refusal (a NACK, or an agent's fetch failure) of `filters` with `record`. A
/// refusal lists every resource of the response; the one already ACKed at this version is not
/// what was refused.
fn refuse(
    node: &mut Node,
    filters: &[FilterVersion],
    error: &str,
    now_ms: u64,
    record: impl Fn(&mut FilterOnNode, Nack),
) {
    for f in filters {
        let state = node.filters.entry(f.name.clone()).or_default();
        if state.acked.as_deref() == Some(f.version.as_str()) {
            continue;
        }
        let nack = Nack {
            version: f.version.clone(),
            error: error.to_string(),
            at_unix_ms: now_ms,
        };
        record(state, nack);
    }
}

fn entry<'a>(nodes: &'a mut BTreeMap<String, Node>, id: &str) -> &'a mut Node {
    nodes.entry(id.to_string()).or_insert_with(|| Node::new(id))
}

impl FilterOnNode {
    /// Marks the ACKed version applied when a clean reload came after the last send. Returns
    /// whether that changed it.
    fn settle(&mut self) -> bool {
        let (Some(sent), Some(reloaded)) = (self.sent_at_ms, self.reloaded_at_ms) else {
            return false;
        };
        if reloaded < sent || self.acked.is_none() || self.applied == self.acked {
            return false;
        }
        self.applied.clone_from(&self.acked);
        true
    }
}

mod failing;
mod remote;

pub use failing::Failing;

#[cfg(test)]
mod tests;
