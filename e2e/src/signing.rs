//! Signing builds with Debian's `minisign` tool, as a release pipeline would (`make setup`
//! installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A minisign key pair in `dir` named `name` (no password): the public key file, the secret
/// key file and the key id minisign prints.
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let public = dir.join(format!("{name}.pub"));
    let secret = dir.join(format!("{name}.sec"));
    let status = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign (make setup installs it)");
    assert!(status.status.success(), "{status:?}");
    let text = std::fs::read_to_string(&public).expect("public key");
    let id = text
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .expect("key id")
        .to_string();
    (public, secret, id)
}

/// The base64 line of a minisign public key file (what `spec.signers.keys` lists).
pub fn public_key_line(public: &Path) -> String {
    let text = std::fs::read_to_string(public).expect("public key");
    text.lines().nth(1).expect("base64 line").trim().to_string()
}

/// Signs `file` with `secret` into `out`.
pub fn sign(secret: &Path, file: &Path, out: &Path) {
    let status = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(secret)
        .arg("-m")
        .arg(file)
        .arg("-x")
        .arg(out)
        .output()
        .expect("minisign");
    assert!(status.status.success(), "{status:?}");
}
