//! Where plugins go, once manifests govern them: which proxies a plugin targets, the rollout
//! policy each plugin runs under, and (with a mesh config) the catalog the proxies'
//! listeners, routes and clusters are composed from.
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

/// The manifests in force, as the engine uses them.
#[derive(Debug, Default)]
pub struct Placement {
    /// Set once manifests govern: a filter with no manifest is served to no proxy.
    managed: bool,
    plugins: BTreeMap<String, PluginPlacement>,
    /// Set when the control plane serves LDS, RDS and CDS.
    mesh: Option<Arc<Catalog>>,
}

impl Placement {
    /// The placement `catalog` says, with `default` as the policy a manifest refines;
    /// `serve_mesh` keeps the catalog's listeners and clusters for composing.
    pub fn governed(catalog: Arc<Catalog>, serve_mesh: bool, default: &Policy) -> Self {
        let plugins = catalog
            .plugins
            .values()
            .map(|plugin| {
                let placement = PluginPlacement {
                    targets: plugin.spec.targets.compile(),
                    policy: rollout_policy(&plugin.spec, default),
                };
                (plugin.name.clone(), placement)
            })
            .collect();
        Self {
            managed: true,
            plugins,
            mesh: serve_mesh.then_some(catalog),
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
        self.mesh.as_ref()
    }
}
