use super::*;
use crate::artifact::ArtifactKind;
use crate::rollout::state::RolloutStore;
use crate::rollout::state::{Release, StateFiles};

fn plugins() -> BTreeMap<String, PluginRecord> {
    let release = Release {
        version: "a:1".into(),
        sha256: "a".into(),
        kind: ArtifactKind::Wasm,
        path: PathBuf::from("/store/a.wasm"),
        config_json: "{}".into(),
        envoy_version: None,
        failure_policy: Default::default(),
        signers: Vec::new(),
        vm: Default::default(),
    };
    let mut plugins = BTreeMap::new();
    plugins.insert(
        "authz".to_string(),
        PluginRecord {
            last_good: Some(release),
            ..PluginRecord::default()
        },
    );
    plugins
}

fn state_error(files: &StateFiles) -> String {
    match files.load_plugins() {
        Err(err @ Error::State { .. }) => err.to_string(),
        other => panic!("expected a state error, got {other:?}"),
    }
}

#[test]
fn each_save_is_a_new_generation_and_keeps_the_previous_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = StateFiles::open(dir.path()).expect("open");
    files.save_plugins(&BTreeMap::new()).expect("save 1");
    files.save_plugins(&plugins()).expect("save 2");
    let Loaded::Valid(now) = load(&files.state_path()).expect("load") else {
        panic!("current generation is valid");
    };
    let Loaded::Valid(prev) = load(&previous(&files.state_path())).expect("load") else {
        panic!("previous generation is valid");
    };
    assert_eq!((now.generation, prev.generation), (2, 1));
    assert_eq!(now.plugins, plugins());
    assert!(prev.plugins.is_empty());
    let again = StateFiles::open(dir.path()).expect("reopen");
    assert_eq!(again.load_plugins().expect("load"), plugins());
    assert_eq!(again.generation(), 2);
}

#[test]
fn a_damaged_state_with_artifacts_in_the_store_stops_with_the_way_out() {
    let table: [(&str, Option<&[u8]>, &str); 6] = [
        (
            "missing",
            None,
            "it is missing while the store holds artifacts",
        ),
        ("empty", Some(b""), "the file is empty"),
        (
            "{}",
            Some(b"{}"),
            "it holds no filter while the store holds artifacts",
        ),
        (
            "truncated",
            Some(b"{\"format\": 2, \"generation\""),
            "truncated or garbled",
        ),
        ("garbage", Some(b"\x00\x01garbage"), "truncated or garbled"),
        ("edited", None, "checksum mismatch"),
    ];
    for (case, bytes, expected) in table {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::open(dir.path()).expect("open").guarding(true);
        files.save_plugins(&plugins()).expect("save");
        let path = files.state_path();
        match (case, bytes) {
            ("missing", _) => fs::remove_file(&path).expect("rm"),
            ("edited", _) => {
                let text = fs::read_to_string(&path).expect("read");
                fs::write(&path, text.replace("a:1", "b:1")).expect("edit");
            }
            (_, Some(bytes)) => fs::write(&path, bytes).expect("write"),
            _ => unreachable!(),
        }
        let message = state_error(&files);
        assert!(message.contains(expected), "{case}: {message}");
        assert!(
            message.contains(&path.display().to_string()),
            "{case}: {message}"
        );
        assert!(
            message.contains("meshplug state restore --previous"),
            "{case}: {message}"
        );
    }
}

#[test]
fn without_artifacts_a_missing_state_is_a_first_start_but_garbage_is_still_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = StateFiles::open(dir.path()).expect("open").guarding(false);
    assert!(files.load_plugins().expect("first start").is_empty());
    fs::write(files.state_path(), b"garbage").expect("write");
    assert!(state_error(&files).contains("truncated or garbled"));
}

#[test]
fn a_format_one_file_is_read_and_upgraded_on_the_next_save() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = StateFiles::open(dir.path()).expect("open").guarding(true);
    let legacy = serde_json::to_vec_pretty(&plugins()).expect("json");
    fs::write(files.state_path(), legacy).expect("write");
    assert_eq!(files.load_plugins().expect("legacy"), plugins());
    files.save_plugins(&plugins()).expect("save");
    assert!(
        matches!(load(&files.state_path()).expect("load"), Loaded::Valid(e) if e.generation == 1)
    );
}
