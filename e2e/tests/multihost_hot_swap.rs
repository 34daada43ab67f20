//! Three hosts, none of which can read the control plane's store: build A then build B of
//! `authz` reach every host's Envoy through its agent, first as `.wasm`, then (a fresh mesh)
//! as `.so`, and every host serves the new build. Each host's cache holds the verified copy
//! its Envoy loads. Then a module that is not ours (hand-written proxy-wasm, no SDK, no
//! heartbeat counter) replaces it on every host, and every host answers with it: an ACK of a
//! cached local file means the module runs, whatever it counts.

use e2e::Mesh;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

const CONFIG: &str =
    r#"{"api_keys": ["test-key-1"], "rules": [{"prefix": "/open", "anonymous": true}]}"#;
const HOSTS: usize = 3;

fn sha_of(path: &std::path::Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read build"))
}

/// The store exists on the control plane's side and is empty (hidden) on a host.
fn assert_store_hidden(mesh: &Mesh, sha: &str) {
    let store = mesh.dir().join("data/store");
    let stored: Vec<_> = std::fs::read_dir(&store)
        .expect("store")
        .flatten()
        .collect();
    assert!(
        stored
            .iter()
            .any(|e| e.file_name().to_string_lossy().starts_with(sha)),
        "the control plane stored {sha}"
    );
    let hidden = [mesh.dir().join("data"), mesh.artifacts().to_path_buf()];
    let hidden: Vec<&std::path::Path> = hidden.iter().map(|p| p.as_path()).collect();
    for host in &mesh.net().hosts {
        let listing = host
            .command(std::path::Path::new("/bin/ls"), &hidden)
            .arg("-A")
            .arg(&store)
            .output()
            .expect("ls on the host");
        let seen = String::from_utf8_lossy(&listing.stdout);
        assert!(
            !seen.contains(sha),
            "host {} can see the store: {seen}",
            host.netns
        );
    }
}

async fn swap(kind: &str, file: &str, a: &str, b: &str) {
    let build_a = filter_artifact(a).expect("test filters built (make test-filters)");
    let build_b = filter_artifact(b).expect("test filters built (make test-filters)");
    let mesh = Mesh::start_hosts(HOSTS, &["--prefer-kind", kind])
        .await
        .expect("three hosts start");
    mesh.publish_config("authz", CONFIG).await.expect("config");
    for (build, tag) in [(&build_a, "authz/a"), (&build_b, "authz/b")] {
        let sha = sha_of(build);
        mesh.publish_copy(build, file).expect("publish");
        for i in 0..HOSTS {
            mesh.wait_until_acked(&format!("envoy-{}", i + 1), "authz", &sha)
                .await;
            mesh.wait_until_served_by(i, tag).await;
            let denied = mesh.get(i, "/", &[]).await.expect("request");
            assert_eq!(denied.status, 401, "[{kind}] host {i} enforces the key");
            let cached = mesh.dir().join(format!("host-{i}/cache"));
            let ext = if kind == "native" { "so" } else { "wasm" };
            let copy = std::fs::read(cached.join(format!("{sha}.{ext}"))).expect("cached copy");
            assert_eq!(
                sha256_hex(&copy),
                sha,
                "[{kind}] host {i} cached the verified bytes"
            );
        }
        assert_store_hidden(&mesh, &sha);
    }
    if kind == "wasm" {
        foreign_module_everywhere(&mesh).await;
    }
    mesh.assert_every_node_behind_an_agent().await;
}

/// A proxy-wasm module written by hand: it answers every request with 418 and a fixed body,
/// and defines no metrics at all.
fn foreign_module() -> Vec<u8> {
    let reply = "(drop (call $reply (i32.const 418) (i32.const 0) (i32.const 0) \
                 (i32.const 16) (i32.const 27) (i32.const 0) (i32.const 0) (i32.const -1))) \
                 (i32.const 1)";
    let text =
        meshplug_preflight::testing::proxy_wasm_wat("(i32.const 1)", "(i32.const 1)", reply, "");
    wat::parse_str(text).expect("valid WAT")
}

async fn foreign_module_everywhere(mesh: &Mesh) {
    let module = foreign_module();
    let sha = sha256_hex(&module);
    mesh.publish("authz.wasm", &module).expect("publish");
    for i in 0..HOSTS {
        mesh.wait_until_acked(&format!("envoy-{}", i + 1), "authz", &sha)
            .await;
        let answer = mesh.get(i, "/anything", &[]).await.expect("request");
        assert_eq!(answer.status, 418, "host {i}: {answer:?}");
        assert_eq!(answer.body, "refusing this configuration", "host {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_and_a_so_swap_on_three_hosts_that_cannot_see_the_store() {
    swap(
        "wasm",
        "authz.wasm",
        "test/authz-a.wasm",
        "test/authz-b.wasm",
    )
    .await;
    swap(
        "native",
        "libauthz.so",
        "test/libauthz-a.so",
        "test/libauthz-b.so",
    )
    .await;
}
