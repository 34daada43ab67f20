//! `meshplug init filter NAME` writes a crate that builds and passes its own unit tests: run in
//! a scratch workspace holding only the SDK (copied) and the new crate, with the workspace's
//! own dependency table and lock file.

use std::path::Path;
use std::process::Command;

use e2e::paths::{meshplug_binary, repo_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The workspace's Cargo.toml with only the SDK and `member` as members.
fn scratch_manifest(member: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    text.lines()
        .filter(|line| !line.starts_with("default-members"))
        .map(|line| match line.starts_with("members") {
            true => format!("members = [\"filters/sdk\", \"filters/{member}\"]"),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_new_filter_builds_and_passes_its_tests() {
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &root.join("filters/sdk"),
        &scratch.path().join("filters/sdk"),
    );
    std::fs::write(scratch.path().join("Cargo.toml"), scratch_manifest("greet")).expect("write");
    for file in ["Cargo.lock", "rust-toolchain.toml"] {
        std::fs::copy(root.join(file), scratch.path().join(file)).expect("copy");
    }
    let init = Command::new(meshplug_binary().expect("meshplug built"))
        .args(["init", "filter", "greet"])
        .current_dir(scratch.path())
        .output()
        .expect("init runs");
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(
        init.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(
        said.contains("meshplug test --envoy-config filters/greet/envoy.yaml"),
        "{said}"
    );
    let again = Command::new(meshplug_binary().expect("meshplug built"))
        .args(["init", "filter", "greet"])
        .current_dir(scratch.path())
        .output()
        .expect("init runs");
    assert!(
        !again.status.success(),
        "an existing crate is never overwritten"
    );
    let test = Command::new("cargo")
        .args(["test", "--quiet", "-p", "greet"])
        .current_dir(scratch.path())
        .env("CARGO_TARGET_DIR", root.join("target/init-check"))
        .output()
        .expect("cargo runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{out}");
    assert!(out.contains("2 passed"), "{out}");
}
