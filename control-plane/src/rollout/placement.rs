//! Where plugins go, once manifests govern them: which proxies a plugin targets, the rollout
//! policy each plugin runs under, and (with a mesh config) the listeners, routes and clusters
//! each proxy is served, with its plugins composed into the chains.
//!
//! Without manifests every filter goes to every proxy under the control plane's policy, and
//! the proxies' listeners come from their bootstraps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use xds::{PreparedResource, Snapshot, type_url};

use super::engine::Engine;
use super::policy::Policy;
use crate::catalog::Catalog;
use crate::compose::{self, envoy::MeshResources};
use crate::manifest::{CompiledSelector, rollout_policy};
use crate::store::sha256_hex;

/// What the manifests say about one plugin's placement.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PluginPlacement {
    pub(super) targets: CompiledSelector,
    pub(super) policy: Policy,
}

/// The manifests in force, as the engine uses them.
#[derive(Debug, Default)]
pub(super) struct Placement {
    /// Set once manifests govern: a filter with no manifest is served to no proxy.
    pub(super) managed: bool,
    pub(super) plugins: BTreeMap<String, PluginPlacement>,
    /// Set when the control plane serves LDS, RDS and CDS.
    pub(super) mesh: Option<Arc<Catalog>>,
    /// Mesh resources by the set of plugins a proxy is served: proxies alike share them.
    composed: HashMap<BTreeSet<String>, Arc<ComposedResources>>,
}

/// A proxy's listeners, routes and clusters, ready to serve.
#[derive(Debug, Default)]
pub(super) struct ComposedResources {
    by_type: Vec<(&'static str, Vec<(String, PreparedResource)>)>,
}

impl ComposedResources {
    fn prepare(resources: MeshResources) -> Self {
        let prepare = |list: Vec<(String, xds::proto::Any)>| {
            list.into_iter()
                .map(|(name, body)| {
                    let version = sha256_hex(&body.value)[..16].to_string();
                    (name, PreparedResource::new(&version, body))
                })
                .collect()
        };
        Self {
            by_type: vec![
                (type_url::CLUSTER, prepare(resources.clusters)),
                (type_url::LISTENER, prepare(resources.listeners)),
                (type_url::ROUTE_CONFIGURATION, prepare(resources.routes)),
            ],
        }
    }

    /// Puts these resources into `snapshot`, removing listeners, routes and clusters that
    /// are no longer there. Returns whether anything changed.
    pub(super) fn apply(&self, snapshot: &mut Snapshot) -> bool {
        let mut changed = false;
        for (type_url, resources) in &self.by_type {
            let resources = resources.iter().map(|(name, r)| (name.as_str(), r));
            changed |= snapshot.put_resources(type_url, resources, true);
        }
        changed
    }
}

impl Engine {
    /// The manifests changed: follow them. `serve_mesh` makes the engine serve LDS, RDS and
    /// CDS from the catalog's listeners and clusters.
    pub fn set_manifests(&mut self, catalog: Arc<Catalog>, serve_mesh: bool) {
        let plugins = catalog
            .plugins
            .values()
            .map(|plugin| {
                let placement = PluginPlacement {
                    targets: plugin.spec.targets.compile(),
                    policy: rollout_policy(&plugin.spec, &self.policy),
                };
                (plugin.name.clone(), placement)
            })
            .collect();
        self.placement.managed = true;
        self.placement.plugins = plugins;
        self.placement.mesh = serve_mesh.then_some(catalog);
        self.placement.composed.clear();
        self.sync_all();
    }

    /// Whether `plugin` is to run on `node` (its manifest targets it).
    pub(super) fn targets(&self, plugin: &str, node: &str) -> bool {
        if !self.placement.managed {
            return true;
        }
        let Some(placement) = self.placement.plugins.get(plugin) else {
            return false;
        };
        let info = self.connected.get(node).and_then(|c| c.info.as_ref());
        let empty = BTreeMap::new();
        let (cluster, metadata) = info.map_or(("", &empty), |i| (i.cluster.as_str(), &i.metadata));
        placement.targets.matches(node, cluster, metadata)
    }

    /// The rollout policy of `plugin`: its manifest's, or the control plane's.
    pub(super) fn plugin_policy(&self, plugin: &str) -> &Policy {
        self.placement
            .plugins
            .get(plugin)
            .map_or(&self.policy, |p| &p.policy)
    }

    /// With a mesh config: the listeners, routes and clusters of a proxy served `served`.
    pub(super) fn composed_for(
        &mut self,
        served: &BTreeSet<String>,
    ) -> Option<Arc<ComposedResources>> {
        let catalog = self.placement.mesh.clone()?;
        let entry = self
            .placement
            .composed
            .entry(served.clone())
            .or_insert_with(|| {
                let plan = compose::plan(&catalog, served);
                Arc::new(ComposedResources::prepare(compose::envoy::resources(&plan)))
            });
        Some(Arc::clone(entry))
    }

    /// How many rollouts are in each stage (`step-1`, ..., `bake`, or `paused`).
    pub(super) fn rollouts_by_stage(&self) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for rollout in self.plugins.values().filter_map(|p| p.rollout.as_ref()) {
            let stage = match (rollout.paused.is_some(), rollout.stage) {
                (true, _) => "paused".to_string(),
                (false, super::decide::Stage::Step(i)) => format!("step-{}", i + 1),
                (false, super::decide::Stage::Bake) => "bake".to_string(),
            };
            *counts.entry(stage).or_insert(0) += 1;
        }
        counts
    }

    /// The chain each listener of `node` runs now, by listener (for the fleet view).
    pub fn chains_for(&self, node: &str) -> BTreeMap<String, Vec<String>> {
        let Some(catalog) = &self.placement.mesh else {
            return BTreeMap::new();
        };
        let served: BTreeSet<String> = self.desired_for(node).into_keys().collect();
        catalog
            .listeners
            .keys()
            .map(|listener| {
                let chain = compose::chain(catalog, listener, &served);
                (
                    listener.clone(),
                    chain.into_iter().map(|e| e.name).collect(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
