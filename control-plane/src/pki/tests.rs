use super::*;
use crate::tls::identity::node_ids;
use crate::tls::read_certs;

#[test]
fn a_node_certificate_names_its_node_and_chains_to_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path(), 30, false).expect("init");
    let cert = issue(
        dir.path(),
        &Subject::Node("edge-1".into()),
        dir.path(),
        30,
        false,
    )
    .expect("issue");
    assert_eq!(cert, dir.path().join("node-edge-1.pem"));
    let certs = read_certs(&cert).expect("certs");
    assert_eq!(
        node_ids(&certs[0]).expect("ids"),
        vec!["edge-1".to_string()]
    );
    let key = dir.path().join("node-edge-1-key.pem");
    let mode = std::fs::metadata(&key).expect("key").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn nothing_is_overwritten_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path(), 30, false).expect("init");
    let before = std::fs::read(dir.path().join(CA_CERT)).expect("ca");
    let err = init(dir.path(), 30, false).expect_err("exists");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(dir.path().join(CA_CERT)).expect("ca"), before);
    init(dir.path(), 30, true).expect("forced");
    assert_ne!(std::fs::read(dir.path().join(CA_CERT)).expect("ca"), before);
}

#[test]
fn issuing_without_a_ca_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = issue(
        dir.path(),
        &Subject::Client("ops".into()),
        dir.path(),
        30,
        false,
    )
    .expect_err("no CA");
    assert!(err.to_string().contains("meshplug pki init"), "{err}");
}

#[test]
fn a_server_certificate_needs_a_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path(), 30, false).expect("init");
    let err =
        issue(dir.path(), &Subject::Server(vec![]), dir.path(), 30, false).expect_err("no name");
    assert!(err.to_string().contains("--name"), "{err}");
    assert!(!dir.path().join("server.pem").exists());
}

#[test]
fn odd_node_ids_make_safe_file_names() {
    assert_eq!(Subject::Node("a/../b c".into()).stem(), "node-a_.._b_c");
}
