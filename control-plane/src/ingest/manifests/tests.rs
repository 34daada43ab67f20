//! Ingest while manifests govern: builds are matched to plugins by `spec.artifact`.

use std::fs;
use std::sync::{Arc, Mutex, RwLock};

use super::*;
use crate::catalog::{ScannedFile, reconcile};
use crate::check::Limits;
use crate::registry::Registry;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::StateFiles;
use crate::rollout::{Engine, Policy};
use crate::store::{Store, sha256_hex};

fn wasm(tag: &str) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0\x00".to_vec();
    bytes.push(u8::try_from(tag.len()).expect("short tag"));
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

fn ingest(dir: &Path) -> Ingest {
    Ingest {
        folder: dir.canonicalize().expect("canonical"),
        store: Store::open(dir.join("store")).expect("store"),
        limits: Limits::default(),
        registry: Arc::new(Mutex::new(Registry::new())),
        engine: Arc::new(Mutex::new(
            Engine::open(
                Policy::immediate(),
                StateFiles::open(dir.join("rollouts")).expect("state"),
                Arc::new(xds::SnapshotCache::new()),
                Arc::new(RolloutMetrics::unregistered()),
                None,
            )
            .expect("engine"),
        )),
        preflight: None,
        prefer: ArtifactKind::Wasm,
        mode: crate::mode::Mode::Manifests {
            plugins: "plugins".into(),
        },
        manifests: Arc::new(RwLock::new(Arc::new(Catalog::new()))),
        serial: Arc::default(),
        refusals: Arc::new(crate::refusals::Refusals::unregistered()),
        trusted_keys: Arc::default(),
        envoy: None,
    }
}

fn catalog(plugins: &[(&str, &str, &str)]) -> Catalog {
    let files: Vec<ScannedFile> = plugins
        .iter()
        .map(|(name, artifact, config)| ScannedFile {
            file: format!("plugins/{name}.yaml"),
            text: format!(
                "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\n\
                 spec:\n  artifact: \"{artifact}\"\n  phase: custom\n  config: {config}\n"
            ),
        })
        .collect();
    reconcile(&Catalog::new(), &files)
}

fn drop_build(ingest: &Ingest, dir: &Path, file: &str, bytes: &[u8]) -> IngestOutcome {
    let path = dir.join(file);
    fs::write(&path, bytes).expect("write");
    ingest.handle(&path).expect("handled")
}

fn running(ingest: &Ingest, plugin: &str) -> Option<String> {
    let registry = ingest.registry.lock().expect("lock");
    registry
        .get(plugin)
        .and_then(|p| p.artifact.as_ref())
        .map(|a| a.sha256.clone())
}

#[test]
fn a_build_waits_for_its_manifest_and_a_manifest_for_its_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = ingest(dir.path());
    let early = drop_build(&ingest, dir.path(), "authz.wasm", &wasm("a"));
    assert!(matches!(early, IngestOutcome::Stored { .. }), "{early:?}");
    assert!(ingest.registry.lock().expect("lock").get("authz").is_none());

    let outcomes = ingest
        .apply_catalog(Arc::new(catalog(&[("edge-authz", "authz", "{k: 1}")])))
        .expect("applied");
    assert!(
        matches!(outcomes[0], IngestOutcome::Published { .. }),
        "{outcomes:?}"
    );
    assert_eq!(running(&ingest, "edge-authz"), Some(sha256_hex(&wasm("a"))));
    let registry = ingest.registry.lock().expect("lock");
    let plugin = registry.get("edge-authz").expect("plugin");
    assert_eq!(plugin.config_json, r#"{"k":1}"#);
    assert_eq!(plugin.manifest.as_deref(), Some("plugins/edge-authz.yaml"));
}

#[test]
fn a_glob_runs_the_newest_matching_build_and_others_are_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = ingest(dir.path());
    ingest
        .apply_catalog(Arc::new(catalog(&[("authz", "authz-*", "{}")])))
        .expect("applied");
    drop_build(&ingest, dir.path(), "authz-v1.wasm", &wasm("v1"));
    assert_eq!(running(&ingest, "authz"), Some(sha256_hex(&wasm("v1"))));
    drop_build(&ingest, dir.path(), "authz-v2.wasm", &wasm("v2"));
    assert_eq!(running(&ingest, "authz"), Some(sha256_hex(&wasm("v2"))));
    let other = drop_build(&ingest, dir.path(), "ratelimit.wasm", &wasm("r"));
    assert!(matches!(other, IngestOutcome::Stored { .. }), "{other:?}");
    assert_eq!(running(&ingest, "authz"), Some(sha256_hex(&wasm("v2"))));
}

#[test]
fn a_config_edit_republishes_and_a_removed_manifest_is_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = ingest(dir.path());
    ingest
        .apply_catalog(Arc::new(catalog(&[("authz", "authz", "{v: 1}")])))
        .expect("applied");
    drop_build(&ingest, dir.path(), "authz.wasm", &wasm("a"));
    let again = ingest
        .apply_catalog(Arc::new(catalog(&[("authz", "authz", "{v: 1}")])))
        .expect("applied");
    assert!(
        matches!(again[0], IngestOutcome::Unchanged { .. }),
        "{again:?}"
    );
    let edited = ingest
        .apply_catalog(Arc::new(catalog(&[("authz", "authz", "{v: 2}")])))
        .expect("applied");
    assert!(
        matches!(edited[0], IngestOutcome::Published { .. }),
        "{edited:?}"
    );
    ingest
        .apply_catalog(Arc::new(catalog(&[])))
        .expect("applied");
    let registry = ingest.registry.lock().expect("lock");
    assert_eq!(registry.get("authz").and_then(|p| p.manifest.clone()), None);
}

#[test]
fn side_files_are_ignored_when_manifests_govern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = ingest(dir.path());
    let outcome = drop_build(&ingest, dir.path(), "authz.json", b"{}");
    assert_eq!(outcome, IngestOutcome::Ignored);
}

#[test]
fn a_refusal_is_recorded_once_across_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = ingest(dir.path());
    drop_build(&ingest, dir.path(), "authz.wasm", &wasm("a"));
    let sha = sha256_hex(&wasm("a"));
    ingest
        .store
        .put_rejection(&sha, "traps in on_configure")
        .expect("record");
    let manifests = Arc::new(catalog(&[("authz", "authz", "{}")]));
    let first = ingest
        .apply_catalog(Arc::clone(&manifests))
        .expect("applied");
    assert!(
        matches!(first[0], IngestOutcome::Rejected { .. }),
        "{first:?}"
    );
    let recorded = |ingest: &Ingest| {
        let registry = ingest.registry.lock().expect("lock");
        registry.get("authz").and_then(|p| p.last_rejection.clone())
    };
    let before = recorded(&ingest).expect("recorded");
    assert!(
        before.reason.contains("traps in on_configure"),
        "{before:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = ingest
        .apply_catalog(Arc::clone(&manifests))
        .expect("applied");
    assert!(
        matches!(again[0], IngestOutcome::Rejected { .. }),
        "{again:?}"
    );
    assert_eq!(
        recorded(&ingest),
        Some(before),
        "not recorded (or logged) again"
    );
    assert_eq!(running(&ingest, "authz"), None);
}
