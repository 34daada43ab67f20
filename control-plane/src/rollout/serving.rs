//! What each proxy is served: the version of each filter it should run (targeting, Envoy
//! version, rollout state: [`desired_for`], pure), and [`Serving`], which owns the snapshot
//! cache, the ECDS resources built for each release and (with a mesh config) the composed
//! listeners, routes and clusters, and writes them into each proxy's snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use xds::{PreparedResource, Snapshot, SnapshotCache, type_url};

use meshplug_core::nodes::Delivery;
use meshplug_core::rollout::lifecycle::Rollouts;
use meshplug_core::rollout::placement::Placement;
use meshplug_core::rollout::world::World;

use super::state::Release;
use crate::catalog::Catalog;
use crate::compose::{self, envoy::MeshResources};
use crate::ecds::{FilterDeployment, ModuleSource, extension_config};
use crate::store::sha256_hex;

/// The version of each filter `node` should run. A dynamic module goes only to proxies on the
/// Envoy version it was built for; a proxy on another version keeps its last good version, or
/// runs without the filter. Without a composed mesh, a slot whose plugin is gone from a proxy
/// that had it (removed, no longer targeted, or its first version rolled back) is handed the
/// pass-through ([`Release::pass_through`]): state-of-the-world ECDS cannot take a filter
/// configuration back. With a mesh, the plugin leaves the chain instead.
pub(super) fn desired_for(
    rollouts: &Rollouts,
    world: &World<'_>,
    node: &str,
) -> BTreeMap<String, Release> {
    let proxy = world.envoy_version(node);
    let mut out = BTreeMap::new();
    let composed = world.placement.mesh().is_some();
    let had = |name: &str| {
        world
            .nodes
            .get(node)
            .and_then(|n| n.filters.get(name))
            .is_some_and(|f| f.sent.is_some() || f.acked.is_some())
    };
    for (name, record) in &rollouts.records {
        if !world.targets(name, node) {
            if !composed && had(name) {
                out.insert(name.clone(), Release::pass_through());
            }
            continue;
        }
        let on_new = record
            .rollout
            .as_ref()
            .filter(|r| r.pushed.contains_key(node))
            .map(|r| &r.to);
        let last_good = record.last_good.as_ref();
        let runnable = on_new
            .filter(|r| r.runs_on(proxy))
            .or(last_good.filter(|r| r.runs_on(proxy)));
        if let Some(release) = runnable {
            out.insert(name.clone(), release.clone());
        } else if !composed && had(name) {
            out.insert(name.clone(), Release::pass_through());
        }
    }
    out
}

/// With a mesh config: the chain each listener of `node` runs, by listener (for the node
/// view), from the plugins the node model says it is served; empty without one.
pub(super) fn chains_for(world: &World<'_>, node: &str) -> BTreeMap<String, Vec<String>> {
    let (Some(catalog), Some(node)) = (world.placement.mesh(), world.nodes.get(node)) else {
        return BTreeMap::new();
    };
    let served = node
        .filters
        .iter()
        .filter(|(_, f)| f.desired.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    catalog
        .listeners
        .keys()
        .map(|listener| {
            let chain = compose::chain(catalog, listener, &served);
            let names = chain.into_iter().map(|e| e.name).collect();
            (listener.clone(), names)
        })
        .collect()
}

/// The snapshot cache and the resources built for it.
#[derive(Debug)]
pub(super) struct Serving {
    cache: Arc<SnapshotCache>,
    /// ECDS resources by (plugin, version label, delivery), built and digested once, shared
    /// by every proxy's snapshot.
    resources: HashMap<(String, String, Delivery), PreparedResource>,
    /// The artifact service's base URL (`http://host:port`) that agents fetch from; without
    /// one, every proxy is served local paths.
    artifacts_url: Option<String>,
    /// With replicas, this replica's artifact store: a local path is its copy of the sha,
    /// not the path the leader that placed the release had.
    store: Option<crate::store::Store>,
    /// Mesh resources by the set of plugins a proxy is served: proxies alike share them.
    composed: HashMap<BTreeSet<String>, Arc<ComposedResources>>,
    /// Without a composed mesh: the catalog's clusters, which every proxy is served over CDS.
    clusters: Option<Arc<ComposedResources>>,
}

impl Serving {
    pub(super) fn new(cache: Arc<SnapshotCache>) -> Self {
        Self {
            cache,
            resources: HashMap::new(),
            artifacts_url: None,
            store: None,
            composed: HashMap::new(),
            clusters: None,
        }
    }

    /// Local paths name `store`'s copy of each sha from now on.
    pub(super) fn set_store(&mut self, store: crate::store::Store) {
        self.store = Some(store);
        self.resources.clear();
    }

    /// Proxies behind an agent are served remote modules from `url` from now on.
    pub(super) fn set_artifacts_url(&mut self, url: Option<String>) {
        self.artifacts_url = url;
        self.resources.clear();
    }

    /// The manifests changed: composed resources are built again.
    pub(super) fn forget_composed(&mut self) {
        self.composed.clear();
        self.clusters = None;
    }

    /// Drops the snapshot of a forgotten proxy.
    pub(super) fn forget(&self, node: &str) {
        self.cache.remove_unwatched(node);
    }

    fn resource(
        &mut self,
        plugin: &str,
        release: &Release,
        delivery: Delivery,
    ) -> PreparedResource {
        // Without an artifact service an agent's proxy gets the local path, as before.
        let remote = match delivery {
            Delivery::Agent => self.artifacts_url.as_deref(),
            Delivery::Local => None,
        };
        let delivery = match remote {
            Some(_) => Delivery::Agent,
            None => Delivery::Local,
        };
        let key = (plugin.to_string(), release.version.clone(), delivery);
        self.resources
            .entry(key)
            .or_insert_with(|| {
                let uri = remote.map(|base| {
                    crate::artifacts::artifact_url(base, &release.sha256, release.kind)
                });
                let local = match &self.store {
                    Some(store) => store.path_for(&release.sha256, release.kind),
                    None => release.path.clone(),
                };
                let module = match &uri {
                    Some(uri) => ModuleSource::Remote {
                        uri,
                        sha256: &release.sha256,
                    },
                    None => ModuleSource::Local(&local),
                };
                let body = extension_config(&FilterDeployment {
                    name: plugin,
                    kind: release.kind,
                    module,
                    config_json: &release.config_json,
                    failure_policy: release.failure_policy,
                    vm: &release.vm,
                });
                PreparedResource::new(&release.version, body)
            })
            .clone()
    }

    /// Writes `desired` into `node`'s snapshot, its modules delivered as `delivery` says,
    /// with the clusters `placement` says (always served over CDS, an empty set included, so
    /// a proxy's initial CDS fetch ends at once) and, with a mesh, its composed listeners.
    pub(super) fn serve(
        &mut self,
        (node, delivery): (&str, Delivery),
        desired: &BTreeMap<String, Release>,
        placement: &Placement,
    ) {
        let mesh = placement.mesh();
        let resources: Vec<(String, PreparedResource)> = desired
            .iter()
            .map(|(name, release)| (name.clone(), self.resource(name, release, delivery)))
            .collect();
        let served: BTreeSet<String> = desired.keys().cloned().collect();
        // The listeners, routes and clusters with a mesh; the clusters alone without one.
        let composed = match mesh {
            Some(catalog) => self.composed_for(catalog, served),
            None => self.clusters_for(placement.clusters()),
        };
        self.cache.update(node, |snapshot| {
            // With composed listeners a filter leaves a proxy by leaving its listeners; its
            // configuration stays, so a draining listener never loses it.
            let remove_others = mesh.is_none();
            let ecds = resources.iter().map(|(name, r)| (name.as_str(), r));
            let changed = snapshot.put_resources(type_url::EXTENSION_CONFIG, ecds, remove_others);
            changed | composed.apply(snapshot)
        });
    }

    /// The clusters of `catalog` alone (none without one), for proxies whose listeners are
    /// their bootstraps'.
    fn clusters_for(&mut self, catalog: Option<&Arc<Catalog>>) -> Arc<ComposedResources> {
        let clusters = self.clusters.get_or_insert_with(|| {
            let plan = compose::MeshPlan {
                listeners: Vec::new(),
                clusters: catalog
                    .map(|c| c.clusters.values().collect())
                    .unwrap_or_default(),
            };
            Arc::new(ComposedResources::prepare_clusters(
                compose::envoy::resources(&plan),
            ))
        });
        Arc::clone(clusters)
    }

    fn composed_for(
        &mut self,
        catalog: &Arc<Catalog>,
        served: BTreeSet<String>,
    ) -> Arc<ComposedResources> {
        let entry = self.composed.entry(served).or_insert_with_key(|served| {
            let plan = compose::plan(catalog, served);
            Arc::new(ComposedResources::prepare(compose::envoy::resources(&plan)))
        });
        Arc::clone(entry)
    }
}

/// A proxy's listeners, routes and clusters, ready to serve.
#[derive(Debug, Default)]
struct ComposedResources {
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

    /// The clusters of `resources` alone: listeners and routes are left as they are.
    fn prepare_clusters(resources: MeshResources) -> Self {
        let mut prepared = Self::prepare(resources);
        prepared
            .by_type
            .retain(|(type_url, _)| *type_url == type_url::CLUSTER);
        prepared
    }

    /// Puts these resources into `snapshot`, removing listeners, routes and clusters that
    /// are no longer there. Returns whether anything changed.
    fn apply(&self, snapshot: &mut Snapshot) -> bool {
        let mut changed = false;
        for (type_url, resources) in &self.by_type {
            let resources = resources.iter().map(|(name, r)| (name.as_str(), r));
            changed |= snapshot.put_resources(type_url, resources, true);
        }
        changed
    }
}
