//! The engine as one of several replicas (`serve --store etcd://…`). Every replica serves
//! the proxies connected to it; only the leader decides. A follower's engine takes the
//! leader's rollout records as they land in etcd ([`Engine::mirror`]), serves its proxies
//! from them, publishes its node model (through its store) and relays its proxies' stats
//! flushes to the leader ([`Engine::take_relayed`]). The leader reads the other replicas'
//! nodes ([`Engine::set_remote_nodes`]) and decides on the whole fleet.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use meshplug_core::nodes::Node;
use meshplug_core::rollout::effects::Effects;
use meshplug_core::rollout::progress::{self, evaluate_all};
use meshplug_core::rollout::signals::FlushSample;
use meshplug_core::rollout::world::World;

use super::Engine;
use crate::Error;
use crate::catalog::Catalog;
use crate::rollout::state::{Decision, PluginRecord, RolloutStore};
use meshplug_core::rollout::placement::Governs;

/// What this engine may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The only control plane (the embedded default): it decides.
    #[default]
    Sole,
    /// The replica that leads: it decides, and every write is fenced by its term.
    Leader,
    /// Another replica: it serves what the leader decided and decides nothing.
    Follower,
}

/// One stats flush a follower received, for the leader.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelayedFlush {
    /// The proxy.
    pub node: String,
    /// When the follower received it, ms since the Unix epoch.
    pub at_ms: u64,
    /// What it said.
    pub sample: FlushSample,
}

/// Flushes a follower holds for the leader at most; older ones are dropped first (the
/// leader then sees a gap, as for a proxy whose flush was lost).
pub const RELAY_BOUND: usize = 20_000;

/// The relay outbox of a follower.
#[derive(Debug, Default)]
pub(super) struct Relay {
    queue: VecDeque<RelayedFlush>,
    /// Flushes dropped because the outbox was full.
    pub(super) dropped: u64,
}

impl Relay {
    pub(super) fn push(&mut self, flush: RelayedFlush) {
        if self.queue.len() >= RELAY_BOUND {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(flush);
    }
}

impl Engine {
    /// What this engine may do.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether it takes decisions (it is the only control plane, or it leads).
    pub fn decides(&self) -> bool {
        self.role != Role::Follower
    }

    /// Refuses a decision on a follower.
    pub(super) fn must_decide(&self, what: &str) -> Result<(), Error> {
        if self.decides() {
            return Ok(());
        }
        Err(Error::NotLeader(format!("{what} is taken by the leader")))
    }

    /// Starts as a follower (before any proxy connects): `store` saves this replica's
    /// nodes only. Local paths are `store`'s copies of each sha.
    pub fn start_following(&mut self, artifacts: crate::store::Store) {
        self.role = Role::Follower;
        self.serving.set_store(artifacts);
    }

    /// This replica leads now, its writes fenced through `store`: it takes the rollout state
    /// and the decision log from it, re-arms the rollouts' clocks for the time nobody led,
    /// and serves every proxy from what it loaded.
    pub fn lead(&mut self, store: Box<dyn RolloutStore>, now_ms: u64) -> Result<(), Error> {
        let records = store.load_plugins()?;
        self.next_seq = store.last_seq() + 1;
        self.store = store;
        self.rollouts.records = records;
        self.rollouts.in_flight.clear();
        self.pending = Effects::default();
        self.role = Role::Leader;
        // The fleet's signals start now for this leader: staleness and grace count from here.
        self.clock.opened_ms = Some(now_ms);
        self.clock.alive_marked_ms = None;
        self.clock.look_soon = true;
        self.resume_clocks(now_ms);
        self.commit_logged(
            Effects {
                serve_all: true,
                ..Effects::default()
            },
            "serving after taking the lead",
        );
        Ok(())
    }

    /// This replica no longer leads: it decides nothing from now on, and what it had not
    /// saved is dropped (a step not saved never happened). `store` saves its nodes only.
    /// The leader's records come next through [`Engine::mirror`].
    pub fn follow(&mut self, store: Box<dyn RolloutStore>) {
        self.store = store;
        self.role = Role::Follower;
        self.pending = Effects::default();
        self.unsaved_catalog = None;
        self.rollouts.in_flight.clear();
    }

    /// A follower takes the manifests the leader placed (`governs`: which of them count, as
    /// on the leader) and serves its proxies under them. Ignored while this replica decides.
    pub fn mirror_catalog(&mut self, catalog: Arc<Catalog>, governs: Governs) {
        if self.decides() {
            return;
        }
        self.place(catalog, governs);
        self.commit_logged(
            Effects {
                serve_all: true,
                ..Effects::default()
            },
            "serving the leader's manifests",
        );
    }

    /// A follower takes the leader's records (every plugin, as etcd holds them now) and
    /// serves its proxies from them. Ignored while this replica decides.
    pub fn mirror(&mut self, records: BTreeMap<String, PluginRecord>) {
        if self.decides() || records == self.rollouts.records {
            return;
        }
        self.rollouts.records = records;
        self.commit_logged(
            Effects {
                serve_all: true,
                ..Effects::default()
            },
            "serving the leader's state",
        );
        self.metrics.set_in_progress(&self.rollouts.by_stage());
    }

    /// A follower learns a decision the leader logged (for its API).
    pub fn mirror_decision(&mut self, decision: Decision) {
        if !self.decides() {
            self.store.learn(decision);
        }
    }

    /// Replica `replica` now holds `nodes` (empty: none, or it is gone). The leader decides
    /// at once on what changed: a NACK there is judged as one here would be, and a proxy
    /// newly connected there joins rollouts as it would on connecting here.
    pub fn set_remote_nodes(&mut self, replica: &str, nodes: BTreeMap<String, Node>, now_ms: u64) {
        let joined = self.nodes.set_remote(replica, nodes);
        if !self.decides() {
            return;
        }
        let mut fx = Effects::default();
        for node in &joined {
            let world = world!(self);
            progress::rearm_unacked(&mut self.rollouts, &world, node, now_ms, &mut fx);
            let world = world!(self);
            if progress::join_full_rollouts(&mut self.rollouts, &world, node, now_ms, &mut fx) {
                self.clock.look_soon = true;
            }
        }
        let world = world!(self);
        evaluate_all(&mut self.rollouts, &world, now_ms, false, &mut fx);
        self.commit_logged(fx, "judging another replica's nodes");
    }

    /// The flushes a follower holds for the leader, oldest first (taken: the caller sends
    /// them), and how many were dropped since the last call.
    pub fn take_relayed(&mut self) -> (Vec<RelayedFlush>, u64) {
        let dropped = std::mem::take(&mut self.relay.dropped);
        (self.relay.queue.drain(..).collect(), dropped)
    }
}
