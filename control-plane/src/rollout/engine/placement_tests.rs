//! Targeting, per-plugin policies and composed listeners, on an engine with a fake clock.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use prost::Message;
use xds::{NodeInfo, SnapshotCache};

use super::*;
use crate::catalog::{Catalog, ScannedFile, reconcile};
use crate::rollout::Engine;
use crate::rollout::engine::tests::release;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::StateFiles;
use meshplug_core::rollout::placement::Governs;
use xds::type_url;

fn node(id: &str, tier: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        cluster: "test".into(),
        metadata: BTreeMap::from([("tier".to_string(), tier.to_string())]),
        ..NodeInfo::default()
    }
}

fn catalog(plugins: &[(&str, &str, &str)]) -> Arc<Catalog> {
    let mut files = vec![ScannedFile {
        file: "mesh/ingress.yaml".into(),
        text: "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {name: ingress}\n\
               spec:\n  port: 0\n  routes: [{directResponse: {status: 200}}]\n"
            .into(),
    }];
    for (name, phase, targets) in plugins {
        files.push(ScannedFile {
            file: format!("plugins/{name}.yaml"),
            text: format!(
                "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\n\
                 spec:\n  artifact: {name}\n  phase: {phase}\n  targets: {targets}\n  rollout: immediate\n"
            ),
        });
    }
    let catalog = reconcile(&Catalog::new(), &files);
    assert_eq!(catalog.errors().count(), 0, "{:?}", catalog.files);
    Arc::new(catalog)
}

fn engine(cache: &Arc<SnapshotCache>, dir: &std::path::Path) -> Engine {
    let files = StateFiles::open(dir).expect("state files");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    // The default policy has canary steps; the manifests' `rollout: immediate` wins.
    let mut engine =
        Engine::open(Policy::default(), files, Arc::clone(cache), metrics, None).expect("engine");
    engine.on_connect(&node("edge-1", "edge"), 0);
    engine.on_connect(&node("core-1", "core"), 0);
    engine
}

fn chain(cache: &SnapshotCache, node: &str) -> Vec<String> {
    let snapshot = cache.snapshot(node);
    let Some(any) = snapshot
        .resources(type_url::LISTENER)
        .and_then(|r| r.get("ingress"))
    else {
        return vec!["<no listener>".into()];
    };
    let listener = Listener::decode(any.value.as_slice()).expect("listener");
    let Some(filter::ConfigType::TypedConfig(hcm)) =
        &listener.filter_chains[0].filters[0].config_type
    else {
        panic!("no HCM");
    };
    let hcm = HttpConnectionManager::decode(hcm.value.as_slice()).expect("hcm");
    hcm.http_filters.into_iter().map(|f| f.name).collect()
}

fn has_config(cache: &SnapshotCache, node: &str, plugin: &str) -> bool {
    let snapshot = cache.snapshot(node);
    snapshot
        .resources(type_url::EXTENSION_CONFIG)
        .is_some_and(|r| r.get(plugin).is_some())
}

#[test]
fn a_plugin_reaches_only_the_proxies_it_targets_in_phase_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    engine.apply_manifests(
        catalog(&[
            ("ratelimit", "authz", "{}"),
            ("authz", "authn", "{labels: {tier: edge}}"),
        ]),
        Governs::Mesh,
        Vec::new(),
        0,
    );
    assert_eq!(chain(&cache, "edge-1"), ["envoy.filters.http.router"]);
    engine
        .release("ratelimit", release("a"), 1)
        .expect("release");
    engine.release("authz", release("b"), 2).expect("release");
    assert_eq!(
        chain(&cache, "edge-1"),
        ["authz", "ratelimit", "envoy.filters.http.router"]
    );
    assert_eq!(
        chain(&cache, "core-1"),
        ["ratelimit", "envoy.filters.http.router"]
    );
    assert!(has_config(&cache, "edge-1", "authz"));
    assert!(!has_config(&cache, "core-1", "authz"));
    let rollout = engine.plugins()["authz"].rollout.clone();
    let pushed: Vec<String> = rollout
        .map(|r| r.pushed.into_keys().collect())
        .unwrap_or_default();
    assert!(!pushed.contains(&"core-1".to_string()), "{pushed:?}");
}

#[test]
fn a_plugin_with_no_artifact_yet_stays_out_of_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    engine.apply_manifests(
        catalog(&[("authz", "authn", "{}")]),
        Governs::Mesh,
        Vec::new(),
        0,
    );
    assert_eq!(chain(&cache, "edge-1"), ["envoy.filters.http.router"]);
    assert!(!has_config(&cache, "edge-1", "authz"));
}

#[test]
fn removing_a_manifest_takes_the_filter_out_and_keeps_its_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    engine.apply_manifests(
        catalog(&[("authz", "authn", "{}")]),
        Governs::Mesh,
        Vec::new(),
        0,
    );
    engine.release("authz", release("a"), 1).expect("release");
    assert_eq!(
        chain(&cache, "core-1"),
        ["authz", "envoy.filters.http.router"]
    );
    engine.apply_manifests(catalog(&[]), Governs::Mesh, Vec::new(), 0);
    assert_eq!(chain(&cache, "core-1"), ["envoy.filters.http.router"]);
    assert!(
        has_config(&cache, "core-1", "authz"),
        "a draining listener may still use it"
    );
    let core = engine.nodes().get("core-1").expect("known");
    assert!(
        core.filters.values().all(|f| f.desired.is_none()),
        "{core:?}"
    );
}

#[test]
fn without_a_mesh_config_no_listener_is_served_but_targets_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    engine.apply_manifests(
        catalog(&[("authz", "authn", "{labels: {tier: core}}")]),
        Governs::Plugins,
        Vec::new(),
        0,
    );
    engine.release("authz", release("a"), 1).expect("release");
    assert_eq!(chain(&cache, "core-1"), ["<no listener>"]);
    assert!(has_config(&cache, "core-1", "authz"));
    assert!(!has_config(&cache, "edge-1", "authz"));
}

#[test]
fn a_follower_places_the_manifests_the_leader_saved_and_applies_none_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader_cache = Arc::new(SnapshotCache::new());
    let mut leader = engine(&leader_cache, &dir.path().join("leader"));
    let placed = catalog(&[("authz", "authn", "{labels: {tier: edge}}")]);
    leader.apply_manifests(Arc::clone(&placed), Governs::Mesh, Vec::new(), 0);
    leader.release("authz", release("b"), 1).expect("release");

    let cache = Arc::new(SnapshotCache::new());
    let files = StateFiles::open(dir.path().join("follower")).expect("state files");
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut follower =
        Engine::open(Policy::default(), files, Arc::clone(&cache), metrics, None).expect("engine");
    let store = crate::store::Store::open(dir.path().join("store")).expect("store");
    follower.start_following(store);
    follower.on_connect(&node("edge-1", "edge"), 0);
    follower.on_connect(&node("core-1", "core"), 0);
    let releases = vec![("authz".to_string(), release("c"))];
    let refused = follower.apply_manifests(Arc::clone(&placed), Governs::Mesh, releases, 2);
    assert!(
        matches!(refused[0].1, Err(Error::NotLeader(_))),
        "{refused:?}"
    );
    assert_eq!(chain(&cache, "edge-1"), ["<no listener>"], "nothing placed");

    // What the leader saved, read back on the follower, with the leader's records.
    let record: crate::catalog::CatalogRecord =
        serde_json::from_slice(&serde_json::to_vec(&placed.record()).expect("json")).expect("json");
    follower.mirror_catalog(Arc::new(Catalog::from_record(&record)), Governs::Mesh);
    follower.mirror(leader.plugins().clone());
    assert_eq!(chain(&cache, "edge-1"), chain(&leader_cache, "edge-1"));
    assert_eq!(
        chain(&cache, "edge-1"),
        ["authz", "envoy.filters.http.router"]
    );
    assert_eq!(chain(&cache, "core-1"), ["envoy.filters.http.router"]);
    assert!(has_config(&cache, "edge-1", "authz"));
    assert!(!has_config(&cache, "core-1", "authz"));
}

fn clusters(cache: &SnapshotCache, node: &str) -> Option<Vec<String>> {
    let snapshot = cache.snapshot(node);
    let typed = snapshot.resources(type_url::CLUSTER)?;
    let (_, selected) = typed.select(&Default::default(), true);
    Some(selected.iter().map(|s| s.name.to_string()).collect())
}

fn with_cluster(catalog: &Catalog, name: &str) -> Arc<Catalog> {
    let mut files: Vec<ScannedFile> = catalog
        .record()
        .texts
        .into_iter()
        .map(|(file, text)| ScannedFile { file, text })
        .collect();
    files.push(ScannedFile {
        file: format!("plugins/{name}.yaml"),
        text: format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\n\
             spec:\n  endpoints: [\"127.0.0.1:9\"]\n"
        ),
    });
    let next = reconcile(catalog, &files);
    assert_eq!(next.errors().count(), 0, "{:?}", next.files);
    Arc::new(next)
}

#[test]
fn every_proxy_is_served_cds_even_empty_before_any_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let _engine = engine(&cache, dir.path());
    // An empty answer ends the proxy's initial CDS fetch at once.
    assert_eq!(clusters(&cache, "edge-1"), Some(Vec::new()));
    assert_eq!(chain(&cache, "edge-1"), ["<no listener>"]);
}

#[test]
fn with_plugins_alone_the_clusters_are_served_and_the_listeners_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    let placed = with_cluster(&catalog(&[("authz", "authn", "{}")]), "httpbin");
    engine.apply_manifests(placed, Governs::Plugins, Vec::new(), 0);
    assert_eq!(
        clusters(&cache, "edge-1"),
        Some(vec!["httpbin".to_string()])
    );
    assert_eq!(chain(&cache, "edge-1"), ["<no listener>"]);
    engine.apply_manifests(catalog(&[]), Governs::Plugins, Vec::new(), 0);
    assert_eq!(clusters(&cache, "core-1"), Some(Vec::new()), "removed");
}

#[test]
fn in_folder_mode_the_clusters_are_served_and_every_filter_goes_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(SnapshotCache::new());
    let mut engine = engine(&cache, dir.path());
    // Folder mode counts only the clusters: the plugin below places nothing.
    let placed = with_cluster(
        &catalog(&[("authz", "authn", "{labels: {tier: core}}")]),
        "httpbin",
    );
    engine.apply_manifests(placed, Governs::Clusters, Vec::new(), 0);
    engine
        .release("ratelimit", release("a"), 1)
        .expect("release");
    for node in ["edge-1", "core-1"] {
        assert_eq!(clusters(&cache, node), Some(vec!["httpbin".to_string()]));
        assert!(has_config(&cache, node, "ratelimit"), "{node}");
        assert_eq!(chain(&cache, node), ["<no listener>"]);
    }
}
