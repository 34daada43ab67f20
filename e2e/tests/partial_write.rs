//! A slow writer fills `authz.wasm` in place, in chunks, over a few seconds. The control plane
//! must hash and push only the complete file, exactly once.

use std::io::Write;
use std::time::Duration;

use e2e::Mesh;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowly_written_build_is_pushed_once_and_whole() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let build_b =
        std::fs::read(filter_artifact("test/authz-b.wasm").expect("built")).expect("read");
    let mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish_authz_config().expect("config");
    mesh.publish_copy(&build_a, "authz.wasm")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    let publishes_before = publishes(&mesh).await;

    let target = mesh.artifacts().join("authz.wasm");
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::File::create(&target).expect("open in place");
        for chunk in build_b.chunks(build_b.len().div_ceil(10)) {
            file.write_all(chunk).expect("write chunk");
            file.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    mesh.wait_until_served_by(0, "authz/b").await;
    writer.join().expect("writer finished");

    let sha_b = sha256_hex(&std::fs::read(mesh.artifacts().join("authz.wasm")).expect("read"));
    let hashed_shas: Vec<String> = mesh
        .control_plane
        .log_records("hashed")
        .into_iter()
        .filter(|r| {
            r["fields"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("authz.wasm"))
        })
        .filter_map(|r| r["fields"]["sha256"].as_str().map(str::to_string))
        .collect();
    let sha_a = sha256_hex(&std::fs::read(&build_a).expect("read"));
    assert!(
        hashed_shas.iter().all(|sha| *sha == sha_a || *sha == sha_b),
        "only whole builds are hashed: {hashed_shas:?}"
    );
    assert_eq!(
        publishes(&mesh).await,
        publishes_before + 1,
        "exactly one push for B"
    );
    let plugin = mesh.control_plane.plugin("authz").await.expect("status");
    assert!(plugin["last_rejection"].is_null(), "{plugin}");
    assert_eq!(plugin["artifact"]["sha256"], sha_b.as_str());
}

async fn publishes(mesh: &Mesh) -> u64 {
    let plugin = mesh.control_plane.plugin("authz").await.expect("status");
    plugin["publishes"].as_u64().unwrap_or(0)
}
