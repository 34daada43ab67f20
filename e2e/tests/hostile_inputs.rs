//! A table of hostile inputs dropped into the watched folder while a good build serves through
//! a real Envoy: links out of the folder (to `/dev/zero`, to a good build elsewhere), a FIFO,
//! a device, a dangling link, a sparse file over the size limit, empty, truncated and foreign
//! files, configurations that are not JSON, too large or too deep, and names meshplug does not
//! act on. For each: a clear refusal in the API (or a log line naming the reason), `serve`
//! alive, nothing new pushed, and the good build still answering 200 with the key and 401
//! without it.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

/// How one row puts its input in place as `target` (inside the folder, via a hidden name).
enum Input {
    Bytes(Vec<u8>),
    LinkTo(String),
    Fifo,
    Device,
    Sparse(u64),
}

fn place(folder: &Path, target: &str, input: &Input) {
    let tmp = folder.join(format!(".{target}.incoming"));
    let _ = std::fs::remove_file(&tmp);
    match input {
        Input::Bytes(bytes) => std::fs::write(&tmp, bytes).expect("write"),
        Input::LinkTo(to) => symlink(to, &tmp).expect("symlink"),
        Input::Fifo => run("mkfifo", &[&tmp.to_string_lossy()]),
        Input::Device => run("mknod", &[&tmp.to_string_lossy(), "c", "1", "5"]),
        Input::Sparse(len) => std::fs::File::create(&tmp)
            .and_then(|f| f.set_len(*len))
            .expect("sparse file"),
    }
    std::fs::rename(&tmp, folder.join(target)).expect("rename in");
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(
        status.success(),
        "{program} {args:?} failed: this test runs as root (CI does)"
    );
}

async fn good_build_still_serves(mesh: &Mesh, row: &str) {
    mesh.wait_until_served_by(0, "authz/a").await;
    let refused = mesh.get(0, "/", &[]).await.expect("request");
    assert_eq!(refused.status, 401, "{row}: the filter still guards");
    let health = mesh.control_plane.api("/api/v1/plugins").await;
    assert!(health.is_ok(), "{row}: serve is alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_and_the_good_build_keeps_serving() {
    let build_a = filter_artifact("test/authz-a.wasm").expect("built");
    let build_b = filter_artifact("test/authz-b.wasm").expect("built");
    let a = std::fs::read(&build_a).expect("read a");
    let mesh = Mesh::start().await.expect("mesh starts");
    mesh.publish_authz_config().expect("config");
    mesh.publish("authz.wasm", &a).expect("publish a");
    mesh.wait_until_served_by(0, "authz/a").await;
    let envoy = &mesh.envoys[0];
    let version_stat = "extension_config_discovery.http_filter.authz.version_text";
    let version_before = envoy.stats().await.expect("stats")[version_stat].clone();
    let folder = mesh.artifacts().to_path_buf();
    let outside = mesh.dir().join("outside-b.wasm");
    std::fs::copy(&build_b, &outside).expect("copy b outside the folder");
    let deep_json = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let rows: Vec<(&str, &str, Input, &str)> = vec![
        (
            "link to /dev/zero",
            "authz.wasm",
            Input::LinkTo("/dev/zero".into()),
            "outside the artifacts folder",
        ),
        (
            "link to a good build outside",
            "authz.wasm",
            Input::LinkTo(outside.to_string_lossy().into()),
            "outside the artifacts folder",
        ),
        (
            "dangling link",
            "authz.wasm",
            Input::LinkTo(folder.join("nowhere.wasm").to_string_lossy().into()),
            "dangling symbolic link",
        ),
        ("FIFO", "authz.wasm", Input::Fifo, "a FIFO"),
        (
            "character device",
            "authz.wasm",
            Input::Device,
            "a character device",
        ),
        (
            "512 MiB sparse file",
            "authz.wasm",
            Input::Sparse(512 << 20),
            "over the limit",
        ),
        (
            "empty file",
            "authz.wasm",
            Input::Bytes(Vec::new()),
            "empty file",
        ),
        (
            "truncated build",
            "authz.wasm",
            Input::Bytes(a[..a.len() / 2].to_vec()),
            "truncated Wasm",
        ),
        (
            "UTF-16 text",
            "authz.wasm",
            Input::Bytes(
                "\u{feff}hello"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect(),
            ),
            "not a WebAssembly file",
        ),
        (
            "plain-text config",
            "authz.json",
            Input::Bytes(b"api_keys = k1".to_vec()),
            "not valid JSON",
        ),
        (
            "config not UTF-8",
            "authz.json",
            Input::Bytes(b"{\"api_keys\": [\"\xff\xfe\"]}".to_vec()),
            "not UTF-8",
        ),
        (
            "config nested 100k deep",
            "authz.json",
            Input::Bytes(deep_json.into_bytes()),
            "recursion limit",
        ),
        (
            "2 MiB config",
            "authz.json",
            Input::Bytes(format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20)).into_bytes()),
            "over the limit of 1048576 bytes",
        ),
        (
            "fixtures not JSON",
            "authz.fixtures.json",
            Input::Bytes(b"\x00\x01".to_vec()),
            "fixtures",
        ),
    ];
    let mut refused = 0;
    let mut last_at = 0;
    for (row, target, input, needle) in &rows {
        let started = Instant::now();
        place(&folder, target, input);
        // A refusal newer than the previous row's, of this file, for this reason.
        last_at = mesh
            .wait_for_plugin(
                "authz",
                &format!("{row} to be refused"),
                Duration::from_secs(30),
                |plugin| {
                    let rejection = &plugin["last_rejection"];
                    let at = rejection["at_unix_ms"].as_u64().unwrap_or(0);
                    match rejection["reason"].as_str() {
                        Some(reason)
                            if at > last_at
                                && reason.contains(needle)
                                && rejection["source"]
                                    .as_str()
                                    .is_some_and(|s| s.ends_with(target)) =>
                        {
                            Ok(at)
                        }
                        other => Err(format!("{other:?} at {at}")),
                    }
                },
            )
            .await;
        good_build_still_serves(&mesh, row).await;
        refused += 1;
        println!("bad input {row:?}: refused in {:?}", started.elapsed());
        // Put the good build back in place for the next row (same sha: nothing is pushed).
        if *target == "authz.wasm" {
            mesh.publish("authz.wasm", &a).expect("good build back");
        }
    }

    let names = [
        "Authz.wasm",
        "authz.wasm~",
        "lib.so",
        "authz.so",
        "1authz.wasm",
        "au thz.wasm",
        "authz.WASM",
        "ünïcode.wasm",
    ];
    for name in names {
        std::fs::write(folder.join(name), &a).expect("write");
    }
    eventually(
        Duration::from_secs(20),
        "every ignored name to be logged",
        || async {
            let logged: Vec<String> = mesh
                .control_plane
                .log_records("ignored")
                .iter()
                .filter_map(|r| r["fields"]["path"].as_str().map(String::from))
                .collect();
            let missing: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !logged.iter().any(|p| p.ends_with(n)))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not logged: {missing:?}"))
            }
        },
    )
    .await;
    good_build_still_serves(&mesh, "bad names").await;

    let version_after = envoy.stats().await.expect("stats")[version_stat].clone();
    assert_eq!(
        version_after, version_before,
        "Envoy's filter version never moved"
    );
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["publishes"], 1,
        "only build A was ever published: {plugin}"
    );
    println!(
        "bad inputs: {} tried, {refused} refused cleanly, {} names ignored and logged, 0 reached Envoy",
        rows.len(),
        names.len()
    );
}
