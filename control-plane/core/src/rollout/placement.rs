//! Where plugins go, once manifests govern them: which proxies a plugin targets, the rollout
//! policy each plugin runs under, the clusters every proxy is served (in every mode), and
//! (with a mesh config) the catalog the proxies' listeners and routes are composed from.
//!
//! Without manifests every filter goes to every proxy under the control plane's policy, and
//! the proxies' listeners come from their bootstraps.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::nodes::Node;

use super::policy::Policy;
use crate::catalog::Catalog;
use crate::manifest::{CompiledSelector, rollout_policy};

/// What the manifests say about one plugin's placement.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginPlacement {
    pub targets: CompiledSelector,
    pub policy: Policy,
}

/// What the manifests in force govern, by mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Governs {
    /// Clusters only (folder mode: every build is a plugin for every proxy; `kind: Cluster`
    /// manifests in the artifacts folder are served over CDS).
    #[default]
    Clusters,
    /// Plugins and clusters (`--plugins`): the proxies' listeners are their bootstraps'.
    Plugins,
    /// Plugins, listeners and clusters (`--plugins --mesh`): listeners are composed too.
    Mesh,
}

/// The manifests in force, as the engine uses them.
#[derive(Debug, Default)]
pub struct Placement {
    /// Set once manifests govern: a filter with no manifest is served to no proxy.
    managed: bool,
    plugins: BTreeMap<String, PluginPlacement>,
    /// The catalog in force, whose clusters every proxy is served over CDS.
    catalog: Option<Arc<Catalog>>,
    /// Set when the control plane serves LDS and RDS too, composed from the catalog.
    mesh: bool,
}

impl Placement {
    /// The placement `catalog` says, with `default` as the policy a manifest refines;
    /// `governs` says which of its manifests count.
    pub fn governed(catalog: Arc<Catalog>, governs: Governs, default: &Policy) -> Self {
        let managed = governs != Governs::Clusters;
        let plugins = catalog
            .plugins
            .values()
            .filter(|_| managed)
            .map(|plugin| {
                let placement = PluginPlacement {
                    targets: plugin.spec.targets.compile(),
                    policy: rollout_policy(&plugin.spec, default),
                };
                (plugin.name.clone(), placement)
            })
            .collect();
        Self {
            managed,
            plugins,
            catalog: Some(catalog),
            mesh: governs == Governs::Mesh,
        }
    }

    /// Whether `plugin` is to run on proxy `id` (`node` is what it said about itself).
    pub fn targets(&self, plugin: &str, id: &str, node: Option<&Node>) -> bool {
        if !self.managed {
            return true;
        }
        let Some(placement) = self.plugins.get(plugin) else {
            return false;
        };
        let empty = BTreeMap::new();
        let (cluster, metadata) = node.map_or(("", &empty), |n| (n.cluster.as_str(), &n.metadata));
        placement.targets.matches(id, cluster, metadata)
    }

    /// The rollout policy a manifest gives `plugin`, if one does.
    pub fn policy_of(&self, plugin: &str) -> Option<&Policy> {
        self.plugins.get(plugin).map(|p| &p.policy)
    }

    /// The catalog proxies' listeners are composed from, when the control plane serves them.
    pub fn mesh(&self) -> Option<&Arc<Catalog>> {
        self.catalog.as_ref().filter(|_| self.mesh)
    }

    /// The catalog whose clusters every proxy is served over CDS, once one was read.
    pub fn clusters(&self) -> Option<&Arc<Catalog>> {
        self.catalog.as_ref()
    }
}
