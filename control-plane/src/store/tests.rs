use super::*;

#[test]
fn put_is_content_addressed_read_only_and_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    let sha = sha256_hex(b"module");
    let path = store.put(&sha, ArtifactKind::Wasm, b"module").expect("put");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(format!("{sha}.wasm").as_str())
    );
    assert_eq!(fs::read(&path).expect("read"), b"module");
    let mode = fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o222, 0, "stored artifacts are read-only");
    assert_eq!(
        store
            .put(&sha, ArtifactKind::Wasm, b"module")
            .expect("again"),
        path
    );
    let leftovers = fs::read_dir(store.dir())
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn sha256_matches_a_known_vector() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn rejections_are_remembered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.rejection("abc"), None);
    store.put_rejection("abc", "empty file").expect("record");
    assert_eq!(store.rejection("abc").as_deref(), Some("empty file"));
}

#[test]
fn a_failed_write_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    let sha = sha256_hex(b"module");
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", store.temp_path(&sha)).expect("link");
    let err = store
        .put(&sha, ArtifactKind::Wasm, b"module")
        .expect_err("a full disk fails the put");
    assert!(err.to_string().contains("No space left"), "{err}");
    let left: Vec<_> = fs::read_dir(store.dir())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!store.has_artifacts());
}

#[test]
fn opening_removes_leftover_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    fs::write(store.dir().join(".abc.123.tmp"), b"half").expect("write");
    let store = Store::open(store.dir()).expect("reopen");
    assert!(!store.dir().join(".abc.123.tmp").exists());
}
