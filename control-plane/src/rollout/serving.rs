//! What each proxy is served: the version of each filter it should run (targeting, Envoy
//! version, rollout state), the ECDS resources for them, and (with a mesh config) its
//! composed listeners, routes and clusters, written into its snapshot.

use std::collections::BTreeMap;

use xds::{PreparedResource, type_url};

use super::engine::Engine;
use super::state::Release;
use crate::ecds::{FilterDeployment, extension_config};

impl Engine {
    /// The resource for `release` of `plugin`, built and digested once, shared by every
    /// proxy's snapshot.
    fn resource(&mut self, plugin: &str, release: &Release) -> PreparedResource {
        let key = (plugin.to_string(), release.version.clone());
        self.resources
            .entry(key)
            .or_insert_with(|| {
                let body = extension_config(&FilterDeployment {
                    name: plugin,
                    kind: release.kind,
                    module_path: &release.path,
                    config_json: &release.config_json,
                    failure_policy: release.failure_policy,
                });
                PreparedResource::new(&release.version, body)
            })
            .clone()
    }

    /// The version of each filter `node` should run.
    /// A dynamic module goes only to proxies on the Envoy version it was built for; a proxy on
    /// another version keeps its last good version, or runs without the filter.
    pub(super) fn desired_for(&self, node: &str) -> BTreeMap<String, Release> {
        let proxy = self.envoy_version(node);
        let mut out = BTreeMap::new();
        for (name, record) in &self.plugins {
            if !self.targets(name, node) {
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
            }
        }
        out
    }

    /// Serves `node` its desired versions.
    pub(super) fn sync_node(&mut self, node: &str) {
        let desired = self.desired_for(node);
        let labels: BTreeMap<String, String> = desired
            .iter()
            .map(|(name, r)| (name.clone(), r.version.clone()))
            .collect();
        let record = self.nodes.entry(node.to_string()).or_default();
        if record.desired != labels {
            record.desired = labels;
            self.nodes_dirty = true;
        }
        let resources: Vec<(String, PreparedResource)> = desired
            .iter()
            .map(|(name, release)| (name.clone(), self.resource(name, release)))
            .collect();
        let served = desired.keys().cloned().collect();
        let composed = self.composed_for(&served);
        self.cache.update(node, |snapshot| {
            // With composed listeners a filter leaves a proxy by leaving its listeners; its
            // configuration stays, so a draining listener never loses it.
            let remove_others = composed.is_none();
            let ecds = resources.iter().map(|(name, r)| (name.as_str(), r));
            let mut changed =
                snapshot.put_resources(type_url::EXTENSION_CONFIG, ecds, remove_others);
            if let Some(composed) = &composed {
                changed |= composed.apply(snapshot);
            }
            changed
        });
    }

    /// Serves every known proxy its desired versions.
    pub(super) fn sync_all(&mut self) {
        let nodes: Vec<String> = self.nodes.keys().cloned().collect();
        for node in nodes {
            self.sync_node(&node);
        }
    }
}
