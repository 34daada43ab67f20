//! With `--trusted-key`, builds must be signed (a detached `<file>.minisig` made with the
//! `minisign` tool): an unsigned build, one signed by another key and a tampered one are each
//! refused before they are stored, with the reason, and the proxy never sees them; a build
//! whose signature arrives after it is looked at again, rolls out, and shows its signer.

use std::time::Duration;

use e2e::Mesh;
use e2e::paths::filter_artifact;
use e2e::signing::{keypair, sign};
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_builds_signed_by_a_trusted_key_roll_out() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (trusted_pub, trusted_sec, trusted_id) = keypair(keys.path(), "trusted");
    let (_, other_sec, other_id) = keypair(keys.path(), "other");
    let trusted_arg = trusted_pub.display().to_string();
    let mesh = Mesh::start_with(&["--trusted-key", &trusted_arg])
        .await
        .expect("mesh starts");
    mesh.publish_config("authz", CONFIG).await.expect("config");
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let bytes_a = std::fs::read(&build_a).expect("read");
    let sha_a = sha256_hex(&bytes_a);

    // Unsigned.
    let staged = keys.path().join("authz.wasm");
    std::fs::write(&staged, &bytes_a).expect("stage");
    mesh.publish("authz.wasm", &bytes_a).expect("publish");
    let reason = mesh
        .wait_for_rejection("authz", &sha_a, "the unsigned build")
        .await;
    assert!(reason.starts_with("unsigned"), "{reason}");
    let (tag, _) = mesh.served_by(0).await.expect("request");
    assert_eq!(tag, "-", "the proxy never saw it");
    assert!(
        !mesh.dir().join(format!("data/store/{sha_a}.wasm")).exists(),
        "not stored"
    );

    // Signed by a key that is not trusted: the signature arrives, the build is looked at again.
    let other_sig = keys.path().join("by-other.minisig");
    sign(&other_sec, &staged, &other_sig);
    mesh.publish(
        "authz.wasm.minisig",
        &std::fs::read(&other_sig).expect("sig"),
    )
    .expect("publish signature");
    let untrusted = "the build signed by an untrusted key to be refused";
    let reason = mesh
        .wait_for_plugin("authz", untrusted, Duration::from_secs(20), |plugin| {
            match plugin["last_rejection"]["reason"].as_str() {
                Some(reason) if reason.contains("not trusted") => Ok(reason.to_string()),
                _ => Err(format!("not yet: {}", plugin["last_rejection"])),
            }
        })
        .await;
    assert!(reason.contains(&other_id), "{reason}");

    // Tampered: a byte of the build flipped under a valid signature of the original.
    let trusted_sig = keys.path().join("by-trusted.minisig");
    sign(&trusted_sec, &staged, &trusted_sig);
    let mut tampered = bytes_a.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    mesh.publish(
        "authz.wasm.minisig",
        &std::fs::read(&trusted_sig).expect("sig"),
    )
    .expect("publish signature");
    // The signature alone makes the untampered build acceptable: wait for that first...
    mesh.wait_until_served_by(0, "authz/a").await;
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["artifact"]["signers"][0],
        trusted_id.as_str(),
        "{plugin}"
    );
    let table = meshplug::client::plugins_table(
        &mesh
            .control_plane
            .api("/api/v1/plugins")
            .await
            .expect("plugins"),
    );
    assert!(table.contains(&trusted_id), "{table}");
    // ...then the tampered bytes arrive with that same signature, and are refused.
    let sha_t = sha256_hex(&tampered);
    mesh.publish("authz.wasm", &tampered)
        .expect("publish tampered");
    let reason = mesh
        .wait_for_rejection("authz", &sha_t, "the tampered build")
        .await;
    assert!(reason.contains("does not match these bytes"), "{reason}");
    let (tag, code) = mesh.served_by(0).await.expect("request");
    assert_eq!((tag.as_str(), code), ("authz/a", 200), "A keeps serving");
}
