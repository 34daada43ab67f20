//! What a rollout step reads and never changes: the control plane's policy, the manifests'
//! placement, the node model and each proxy's health signals.

use std::collections::{BTreeSet, HashMap};

use crate::nodes::Nodes;

use super::placement::Placement;
use super::policy::Policy;
use super::record::{Release, Rollout};
use super::signals::NodeSignals;

/// A read-only view for one step.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    /// The control plane's policy (a plugin's manifest may override it).
    pub policy: &'a Policy,
    pub placement: &'a Placement,
    pub nodes: &'a Nodes,
    pub signals: &'a HashMap<String, NodeSignals>,
    /// The first clock reading of this process.
    pub opened_ms: Option<u64>,
}

impl World<'_> {
    /// The rollout policy of `plugin`: its manifest's, or the control plane's.
    pub fn plugin_policy(&self, plugin: &str) -> &Policy {
        self.placement.policy_of(plugin).unwrap_or(self.policy)
    }

    /// The policy a rollout runs under: a first version (nothing to fall back to) goes to all
    /// proxies at once, gated by acceptance, load and liveness, and then watched for the
    /// policy's `bake` against the same proxies' traffic before the push (see
    /// [`super::health`] for what a failure does to it).
    pub fn policy_for(&self, plugin: &str, rollout: &Rollout) -> Policy {
        let policy = self.plugin_policy(plugin);
        if rollout.from.is_some() {
            return policy.clone();
        }
        Policy {
            steps: Policy::immediate().steps,
            ..policy.clone()
        }
    }

    /// Whether `plugin` is to run on `node`.
    pub fn targets(&self, plugin: &str, node: &str) -> bool {
        self.placement.targets(plugin, node, self.nodes.get(node))
    }

    /// The Envoy version `node` reported.
    pub fn envoy_version(&self, node: &str) -> Option<&str> {
        self.nodes.get(node)?.envoy_version.as_deref()
    }

    /// Connected proxies that `plugin` targets and that can run `release` (see
    /// [`Release::runs_on`]).
    pub fn eligible_nodes(&self, plugin: &str, release: &Release) -> BTreeSet<String> {
        self.nodes
            .connected()
            .filter(|node| self.targets(plugin, node) && release.runs_on(self.envoy_version(node)))
            .cloned()
            .collect()
    }
}
