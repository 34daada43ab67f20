//! Filter-chain composition: which listeners, routes and clusters a proxy is served, and which
//! plugins run in each listener's HTTP filter chain, in what order. Pure.
//!
//! A plugin joins a proxy's chain only when the proxy is served an ECDS resource for it (the
//! rollout engine decides that: targeting, Envoy version, rollout state). So a listener never
//! refers to a filter configuration the proxy cannot fetch, and adding a plugin never opens a
//! window of 500s (istio#38313): Envoy warms the new listener until the configuration
//! arrives, and the old listener serves meanwhile.
//!
//! Order: phase (authn, authz, stats, custom), then priority (lower first), then name.
//! `meshplug-envoy`'s `compose` turns a [`MeshPlan`] into Envoy resources.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::manifest::{ClusterSpec, FailurePolicy, ListenerSpec, Named, Phase};

/// One filter in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEntry {
    /// The plugin, which is also its ECDS resource name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Its priority within the phase.
    pub priority: i32,
    /// What the proxy does when it fails or its configuration is missing.
    pub failure_policy: FailurePolicy,
    /// For a built-in Envoy filter (`spec.envoyFilter`), its type URL: the one type its slot
    /// takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builtin_type: Option<String>,
}

/// One listener as a proxy is served it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerPlan<'a> {
    /// The listener (and its route configuration's) name.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a ListenerSpec,
    /// Its HTTP filters, in order, before the router.
    pub chain: Vec<ChainEntry>,
}

/// Everything beyond ECDS one proxy is served.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeshPlan<'a> {
    /// Listeners, by name.
    pub listeners: Vec<ListenerPlan<'a>>,
    /// Clusters, by name.
    pub clusters: Vec<&'a Named<ClusterSpec>>,
}

/// The plan for a proxy that is served ECDS resources for the plugins in `served`.
pub fn plan<'a>(catalog: &'a Catalog, served: &BTreeSet<String>) -> MeshPlan<'a> {
    let listeners = catalog
        .listeners
        .values()
        .map(|listener| ListenerPlan {
            name: &listener.name,
            spec: &listener.spec,
            chain: chain(catalog, &listener.name, served),
        })
        .collect();
    MeshPlan {
        listeners,
        clusters: catalog.clusters.values().collect(),
    }
}

/// The plugins in `listener`'s chain for a proxy served `served`, in order.
pub fn chain(catalog: &Catalog, listener: &str, served: &BTreeSet<String>) -> Vec<ChainEntry> {
    let mut entries: Vec<ChainEntry> = catalog
        .plugins
        .values()
        .filter(|plugin| served.contains(&plugin.name))
        .filter(|plugin| {
            plugin.spec.listeners.is_empty() || plugin.spec.listeners.iter().any(|l| l == listener)
        })
        .map(|plugin| ChainEntry {
            name: plugin.name.clone(),
            phase: plugin.spec.phase,
            priority: plugin.spec.priority,
            failure_policy: plugin.spec.failure_policy,
            builtin_type: plugin
                .spec
                .envoy_filter
                .as_ref()
                .map(|f| f.type_url.clone()),
        })
        .collect();
    entries.sort_by(|a, b| (a.phase, a.priority, &a.name).cmp(&(b.phase, b.priority, &b.name)));
    entries
}

#[cfg(test)]
mod tests;
