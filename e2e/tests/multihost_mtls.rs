//! Two hosts, everything that crosses the bridge over mTLS with certificates from
//! `meshplug pki`: each host's agent holds its ADS stream and fetches artifacts (HTTPS) with
//! its node's certificate, each Envoy streams its stats with the same. A build reaches both
//! hosts; the artifact service refuses a client without a certificate; after a host's
//! certificate is re-issued on disk, the next build still reaches it (the agent reads the
//! files again for each new connection).

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_reach_other_hosts_over_mtls() {
    let mesh = Mesh::start_hosts_mtls(2, &[])
        .await
        .expect("two hosts over mTLS");
    let pki = mesh
        .bed
        .as_ref()
        .and_then(|bed| bed.pki.as_ref())
        .expect("pki");
    mesh.publish_config("authz", CONFIG).await.expect("config");
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let sha_a = sha256_hex(&std::fs::read(&build_a).expect("read"));
    mesh.publish_copy(&build_a, "authz.wasm").expect("publish");
    for envoy in 0..2 {
        mesh.wait_until_served_by(envoy, "authz/a").await;
        let cached = mesh.dir().join(format!("host-{envoy}/cache/{sha_a}.wasm"));
        assert!(cached.exists(), "host {envoy} cached {}", cached.display());
    }

    let artifacts = mesh
        .control_plane
        .addrs
        .artifacts
        .expect("artifact service");
    let url = format!("https://{artifacts}/artifacts/{sha_a}.wasm");
    let anonymous = pki.http_client(None).expect("client");
    let refused = anonymous.get(&url).send().await;
    assert!(
        refused.is_err(),
        "no client certificate, no artifact: {refused:?}"
    );
    let node = pki.http_client(Some("envoy-1")).expect("client");
    let fetched = node
        .get(&url)
        .send()
        .await
        .expect("with a node certificate");
    assert_eq!(fetched.status(), 200);

    pki.issue_node("envoy-1", true).expect("re-issue envoy-1");
    let build_b = filter_artifact("test/authz-b.wasm").expect("test filters built");
    mesh.publish_copy(&build_b, "authz.wasm")
        .expect("publish b");
    for envoy in 0..2 {
        mesh.wait_until_served_by(envoy, "authz/b").await;
    }
    // Stats cross the bridge over mTLS too, each stream accepted for its own node. A stream
    // opens at its Envoy's first stats flush, which the swaps need not have waited for.
    for id in ["envoy-1", "envoy-2"] {
        eventually(
            Duration::from_secs(10),
            &format!("{id}'s stats stream"),
            || async {
                let opened = mesh.control_plane.log_records("metrics stream opened");
                match opened.iter().any(|r| r["fields"]["node"] == id) {
                    true => Ok(()),
                    false => Err(format!("{opened:?}")),
                }
            },
        )
        .await;
    }
    assert!(
        mesh.control_plane
            .log_records("metrics stream refused")
            .is_empty()
    );
    mesh.assert_every_node_behind_an_agent().await;
}
