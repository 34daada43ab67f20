use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use super::*;

fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("artifacts");
    fs::create_dir_all(&folder).expect("mkdir");
    let folder = folder.canonicalize().expect("canonical");
    (dir, folder)
}

fn refused(outcome: ReadOutcome) -> String {
    match outcome {
        ReadOutcome::Refused(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_regular_file_is_read_whole() {
    let (_dir, folder) = folder();
    let path = folder.join("authz.wasm");
    fs::write(&path, b"\0asm\x01\0\0\0").expect("write");
    let outcome = read_checked(&path, &folder, 1024).expect("read");
    assert_eq!(outcome, ReadOutcome::Bytes(b"\0asm\x01\0\0\0".to_vec()));
}

#[test]
fn a_link_to_dev_zero_is_refused_without_reading() {
    let (_dir, folder) = folder();
    let path = folder.join("x.wasm");
    symlink("/dev/zero", &path).expect("link");
    let reason = refused(read_checked(&path, &folder, 8 << 20).expect("read"));
    assert!(reason.contains("outside the artifacts folder"), "{reason}");
}

#[test]
fn a_device_in_the_folder_is_refused() {
    // A link inside the folder to a device inside the folder is still not a regular file.
    let (_dir, folder) = folder();
    let dev = folder.join("zero");
    if std::process::Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let path = folder.join("x.wasm");
        symlink(&dev, &path).expect("link");
        let reason = refused(read_checked(&path, &folder, 8 << 20).expect("read"));
        assert!(reason.contains("character device"), "{reason}");
    }
}

#[test]
fn a_fifo_is_refused_at_once() {
    let (_dir, folder) = folder();
    let path = folder.join("x.wasm");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let started = Instant::now();
    let reason = refused(read_checked(&path, &folder, 8 << 20).expect("read"));
    assert!(reason.contains("a FIFO"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "blocked on the FIFO"
    );
}

#[test]
fn an_oversized_file_is_refused_from_its_size_alone() {
    let (_dir, folder) = folder();
    let path = folder.join("big.wasm");
    // Sparse: 512 MiB that take no disk; a read would take 512 MiB of memory.
    let file = File::create(&path).expect("create");
    file.set_len(512 << 20).expect("set_len");
    let reason = refused(read_checked(&path, &folder, 8 << 20).expect("read"));
    assert!(
        reason.contains("over the limit of 8388608 bytes"),
        "{reason}"
    );
}

#[test]
fn links_inside_the_folder_are_followed_and_dangling_ones_refused() {
    let (_dir, folder) = folder();
    let real = folder.join("builds");
    fs::create_dir_all(&real).expect("mkdir");
    fs::write(real.join("authz-1.wasm"), b"module").expect("write");
    let link = folder.join("authz.wasm");
    symlink(real.join("authz-1.wasm"), &link).expect("link");
    assert_eq!(
        read_checked(&link, &folder, 1024).expect("read"),
        ReadOutcome::Bytes(b"module".to_vec())
    );
    let dangling = folder.join("gone.wasm");
    symlink(folder.join("nowhere.wasm"), &dangling).expect("link");
    let reason = refused(read_checked(&dangling, &folder, 1024).expect("read"));
    assert!(reason.contains("dangling symbolic link"), "{reason}");
}

#[test]
fn a_link_out_of_the_folder_to_a_real_wasm_is_refused() {
    let (dir, folder) = folder();
    let outside = dir.path().join("outside.wasm");
    fs::write(&outside, b"\0asm\x01\0\0\0").expect("write");
    let path = folder.join("authz.wasm");
    symlink(&outside, &path).expect("link");
    let reason = refused(read_checked(&path, &folder, 1024).expect("read"));
    assert!(reason.contains("outside the artifacts folder"), "{reason}");
}

#[test]
fn a_folder_named_like_a_build_is_refused_and_a_missing_path_is_not_settled() {
    let (_dir, folder) = folder();
    let path = folder.join("authz.wasm");
    fs::create_dir_all(&path).expect("mkdir");
    let reason = refused(read_checked(&path, &folder, 1024).expect("read"));
    assert!(reason.contains("a folder"), "{reason}");
    let missing = folder.join("missing.wasm");
    assert_eq!(
        read_checked(&missing, &folder, 1024).expect("read"),
        ReadOutcome::NotSettled
    );
}
