use super::*;

const WASM: &[u8] = b"\0asm\x01\0\0\0\x00\x08module-a";

use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::StateFiles;
use crate::rollout::{Engine, Policy};

struct Fixture {
    _dir: tempfile::TempDir,
    watched: PathBuf,
    ingest: Ingest,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("artifacts");
    fs::create_dir_all(&watched).expect("mkdir");
    let ingest = Ingest {
        folder: watched.canonicalize().expect("canonical"),
        store: Store::open(dir.path().join("store")).expect("store"),
        limits: Limits::default(),
        registry: Arc::new(Mutex::new(Registry::new())),
        engine: Arc::new(Mutex::new(
            Engine::open(
                Policy::immediate(),
                StateFiles::open(dir.path().join("rollouts")).expect("state"),
                Arc::new(xds::SnapshotCache::new()),
                Arc::new(RolloutMetrics::unregistered()),
                None,
            )
            .expect("engine"),
        )),
        preflight: None,
        prefer: ArtifactKind::Wasm,
        mode: crate::mode::Mode::Folder,
        manifests: Default::default(),
        serial: Arc::default(),
        refusals: Arc::new(crate::refusals::Refusals::unregistered()),
        trusted_keys: Arc::default(),
        envoy: None,
    };
    Fixture {
        _dir: dir,
        watched,
        ingest,
    }
}

impl Fixture {
    fn drop_file(&self, name: &str, bytes: &[u8]) -> IngestOutcome {
        let path = self.watched.join(name);
        fs::write(&path, bytes).expect("write");
        self.ingest.handle(&path).expect("handled")
    }

    fn published_version(&self) -> Option<String> {
        let engine = self.ingest.engine.lock().expect("engine");
        let plugin = engine.plugins().get("authz")?;
        plugin.desired().map(|r| r.version.clone())
    }
}

#[test]
fn artifact_is_stored_and_published_once() {
    let f = fixture();
    let outcome = f.drop_file("authz.wasm", WASM);
    let IngestOutcome::Published { version, .. } = outcome else {
        panic!("expected publish, got {outcome:?}");
    };
    assert_eq!(f.published_version(), Some(version.clone()));
    let sha = sha256_hex(WASM);
    assert!(f.ingest.store.path_for(&sha, ArtifactKind::Wasm).exists());

    let again = f.drop_file("authz.wasm", WASM);
    assert!(
        matches!(again, IngestOutcome::Unchanged { .. }),
        "{again:?}"
    );
    let publishes = f
        .ingest
        .engine
        .lock()
        .expect("lock")
        .plugins()
        .get("authz")
        .map(|p| p.publishes);
    assert_eq!(publishes, Some(1));
}

#[test]
fn refused_artifact_is_never_published_and_remembered() {
    let f = fixture();
    let outcome = f.drop_file("authz.wasm", b"");
    assert!(matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason == "empty file"));
    assert_eq!(f.published_version(), None);

    let bad = b"not wasm at all";
    f.drop_file("authz.wasm", bad);
    let again = f.drop_file("authz.wasm", bad);
    assert!(
        matches!(&again, IngestOutcome::Rejected { reason, .. } if reason.starts_with("refused before")),
        "{again:?}"
    );
    assert_eq!(f.published_version(), None);
}

#[test]
fn config_change_republishes_with_the_same_artifact() {
    let f = fixture();
    assert!(matches!(
        f.drop_file("authz.json", br#"{"a": 1}"#),
        IngestOutcome::Stored { .. }
    ));
    let IngestOutcome::Published { version: v1, .. } = f.drop_file("authz.wasm", WASM) else {
        panic!("expected publish");
    };
    assert!(matches!(
        f.drop_file("authz.json", br#"{"a": 1}"#),
        IngestOutcome::Unchanged { .. }
    ));
    // The filter gets the bytes as written: reformatting them is a new configuration.
    let IngestOutcome::Published { version: v2, .. } = f.drop_file("authz.json", br#"{ "a" : 1 }"#)
    else {
        panic!("expected publish");
    };
    assert_ne!(v1, v2);
    assert_eq!(
        v1.split(':').next(),
        v2.split(':').next(),
        "same artifact sha"
    );
}

#[test]
fn invalid_config_is_refused_and_the_old_one_stays() {
    let f = fixture();
    f.drop_file("authz.json", br#"{"a": 1}"#);
    let outcome = f.drop_file("authz.json", b"{broken");
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains("not valid JSON"))
    );
    let config = f
        .ingest
        .registry
        .lock()
        .expect("lock")
        .get("authz")
        .map(|p| p.config_json.clone());
    assert_eq!(config.as_deref(), Some(r#"{"a": 1}"#), "as written");
}

#[test]
fn temp_files_and_vanished_files_of_no_filter_are_ignored() {
    let f = fixture();
    assert_eq!(f.drop_file("authz.wasm.tmp", WASM), IngestOutcome::Ignored);
    // Gone, and never a filter: nothing to remove.
    let gone = f.watched.join("gone.wasm");
    assert_eq!(
        f.ingest.handle(&gone).expect("handled"),
        IngestOutcome::Ignored
    );
}

fn built_authz() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/filters/authz.wasm");
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make filters` first", path.display()))
}

fn with_preflight(f: Fixture) -> Fixture {
    let sandbox =
        meshplug_preflight::Preflight::new(meshplug_preflight::Limits::default()).expect("engine");
    Fixture {
        ingest: Ingest {
            preflight: Some(Arc::new(sandbox)),
            ..f.ingest
        },
        ..f
    }
}

#[test]
fn preflight_refuses_a_filter_that_refuses_its_config_and_retries_with_a_new_one() {
    let f = with_preflight(fixture());
    f.drop_file("authz.json", br#"{"api_keys": "not-a-list"}"#);
    let outcome = f.drop_file("authz.wasm", &built_authz());
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains("on_configure returned false")),
        "{outcome:?}"
    );
    assert_eq!(f.published_version(), None, "nothing reached the snapshot");

    f.drop_file("authz.json", br#"{"api_keys": ["k1"]}"#);
    let outcome = f.drop_file("authz.wasm", &built_authz());
    assert!(
        matches!(outcome, IngestOutcome::Published { .. }),
        "{outcome:?}"
    );
}

#[test]
fn preflight_refuses_a_bad_config_for_the_running_filter_and_keeps_the_old_one() {
    let f = with_preflight(fixture());
    f.drop_file("authz.json", br#"{"api_keys": ["k1"]}"#);
    f.drop_file("authz.wasm", &built_authz());
    let before = f.published_version();
    let outcome = f.drop_file("authz.json", br#"{"api_keys": ["k1"], "typo": 1}"#);
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains("unknown field")),
        "{outcome:?}"
    );
    assert_eq!(f.published_version(), before);
}

#[test]
fn a_passed_preflight_is_recorded_for_the_build_and_configuration_it_ran() {
    let f = with_preflight(fixture());
    f.drop_file("authz.json", br#"{"api_keys": ["k1"]}"#);
    let wasm = built_authz();
    f.drop_file("authz.wasm", &wasm);
    let registry = f.ingest.registry.lock().expect("registry");
    let pass = registry
        .get("authz")
        .and_then(|p| p.preflight.clone())
        .expect("recorded");
    assert_eq!(pass.sha256, crate::store::sha256_hex(&wasm));
    assert_eq!(
        pass.config_sha256,
        crate::store::sha256_hex(br#"{"api_keys": ["k1"]}"#)
    );
    assert_eq!(pass.fixtures_passed, 0, "the smoke request ran");
    assert!(pass.compile_us > 0, "{pass:?}");
}

#[test]
fn preflight_runs_the_fixtures() {
    let f = with_preflight(fixture());
    f.drop_file("authz.json", br#"{"api_keys": ["k1"]}"#);
    let wrong = br#"[{"name": "no key", "expect": {"status": 200}}]"#;
    assert!(matches!(
        f.drop_file("authz.fixtures.json", wrong),
        IngestOutcome::Stored { .. }
    ));
    let outcome = f.drop_file("authz.wasm", &built_authz());
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains("expected status 200, got 401")),
        "{outcome:?}"
    );
}

#[test]
fn hostile_files_are_refused_by_name_and_never_read() {
    let f = fixture();
    let zero = f.watched.join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
    let fifo = f.watched.join("fifo.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    for (path, expected) in [(&zero, "outside the artifacts folder"), (&fifo, "a FIFO")] {
        let outcome = f.ingest.handle(path).expect("handled");
        assert!(
            matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains(expected)),
            "{}: {outcome:?}",
            path.display()
        );
    }
    let registry = f.ingest.registry.lock().expect("lock");
    let shown = registry.get("fifo").and_then(|p| p.last_rejection.as_ref());
    assert!(
        shown.is_some_and(|r| r.reason.contains("a FIFO")),
        "{shown:?}"
    );
    assert_eq!(f.published_version(), None);
}

#[test]
fn an_oversized_configuration_is_refused_and_the_old_one_stays() {
    let f = fixture();
    f.drop_file("authz.json", br#"{"api_keys":["k1"]}"#);
    f.drop_file("authz.wasm", WASM);
    let before = f.published_version();
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2 << 20));
    let outcome = f.drop_file("authz.json", big.as_bytes());
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { reason, .. } if reason.contains("over the limit of 1048576 bytes")),
        "{outcome:?}"
    );
    assert_eq!(f.published_version(), before);
}

/// A control plane started again on the same store and state: what `serve` does at start.
fn restarted(f: &Fixture) -> Ingest {
    let root = f._dir.path();
    let engine = Engine::open(
        Policy::immediate(),
        StateFiles::open(root.join("rollouts")).expect("state"),
        Arc::new(xds::SnapshotCache::new()),
        Arc::new(RolloutMetrics::unregistered()),
        None,
    )
    .expect("engine");
    let ingest = Ingest {
        registry: Arc::new(Mutex::new(Registry::new())),
        engine: Arc::new(Mutex::new(engine)),
        store: Store::open(root.join("store")).expect("store"),
        ..f.ingest.clone()
    };
    ingest.resume_published();
    ingest
}

#[test]
fn a_configuration_refused_while_running_is_not_in_force_after_a_restart() {
    let f = with_preflight(fixture());
    let good = br#"{"api_keys": ["k1"]}"#;
    f.drop_file("authz.json", good);
    f.drop_file("authz.wasm", &built_authz());
    let before = f.published_version().expect("published");
    let bad = f.drop_file("authz.json", br#"{"api_keys": ["k1"], "typo": 1}"#);
    assert!(matches!(bad, IngestOutcome::Rejected { .. }), "{bad:?}");

    let again = restarted(&f);
    // As at start: configurations first, then builds.
    let config = again.handle(&f.watched.join("authz.json")).expect("config");
    assert!(
        matches!(&config, IngestOutcome::Rejected { reason, .. } if reason.contains("unknown field")),
        "{config:?}"
    );
    let build = again.handle(&f.watched.join("authz.wasm")).expect("build");
    assert!(
        matches!(build, IngestOutcome::Unchanged { .. }),
        "{build:?}"
    );
    let registry = again.registry.lock().expect("lock");
    let in_force = registry.get("authz").map(|p| p.config_json.clone());
    assert_eq!(in_force.as_deref(), Some(r#"{"api_keys": ["k1"]}"#));
    drop(registry);
    let engine = again.engine.lock().expect("engine");
    let served = engine
        .plugins()
        .get("authz")
        .and_then(|p| p.desired())
        .map(|r| r.version.clone());
    assert_eq!(served, Some(before));
}
