use std::fs::OpenOptions;
use std::io::Write;

use super::*;
use crate::artifact::ArtifactKind;
use crate::rollout::decide::Stage;

fn release(version: &str) -> Release {
    Release {
        version: version.into(),
        sha256: version.into(),
        kind: ArtifactKind::Wasm,
        path: PathBuf::from(format!("/store/{version}.wasm")),
        config_json: "{}".into(),
        envoy_version: None,
        failure_policy: Default::default(),
        signers: Vec::new(),
        vm: Default::default(),
    }
}

pub(super) fn decision(seq: u64) -> Decision {
    Decision {
        seq,
        at_ms: 1,
        plugin: "authz".into(),
        rollout: "r".into(),
        from: None,
        to: "b".into(),
        stage: Some(Stage::Step(0)),
        action: "start".into(),
        gate: None,
        reason: "new version".into(),
        canary_size: 0,
        canary: vec![],
        baseline: vec![],
        canary_totals: None,
        baseline_totals: None,
        baseline_kind: None,
        term: None,
    }
}

#[test]
fn plugins_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = StateFiles::open(dir.path()).expect("open");
    assert!(files.load_plugins().expect("empty").is_empty());
    let mut plugins = BTreeMap::new();
    plugins.insert(
        "authz".to_string(),
        PluginRecord {
            last_good: Some(release("a")),
            ..PluginRecord::default()
        },
    );
    files.save_plugins(&plugins).expect("save");
    drop(files);
    let again = StateFiles::open(dir.path()).expect("reopen");
    assert_eq!(again.load_plugins().expect("load"), plugins);
}

#[test]
fn the_log_appends_and_skips_a_torn_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = StateFiles::open(dir.path()).expect("open");
    files.append(&decision(1)).expect("append");
    files.append(&decision(2)).expect("append");
    let path = dir.path().join("decisions.jsonl");
    let mut raw = OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open log");
    raw.write_all(b"{\"seq\":3,\"at_m").expect("torn write");
    drop(files);
    let files = StateFiles::open(dir.path()).expect("reopen");
    let seqs: Vec<u64> = files.recent().map(|d| d.seq).collect();
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn a_corrupt_state_file_is_an_error_not_an_empty_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("state.json"), b"{not json").expect("write");
    let files = StateFiles::open(dir.path()).expect("open");
    assert!(files.load_plugins().is_err());
}
