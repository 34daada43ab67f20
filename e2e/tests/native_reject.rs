//! A `.so` that lacks the hooks Envoy requires, and a file that is not ELF at all, are both
//! refused before any push: the build already serving keeps serving, nothing new is published.

use e2e::Mesh;
use e2e::mesh::authz_config;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dynamic_modules_never_reach_envoy() {
    let build_a = filter_artifact("test/libauthz-a.so").expect("test filters built");
    let mesh = Mesh::start_with(&["--prefer-kind", "native"])
        .await
        .expect("mesh starts");
    mesh.publish_config("authz", &authz_config())
        .await
        .expect("config");
    mesh.publish_copy(&build_a, "libauthz.so")
        .expect("publish A");
    mesh.wait_until_served_by(0, "authz/a").await;
    let envoy = &mesh.envoys[0];
    let version_stat = "extension_config_discovery.http_filter.authz.version_text";
    let version_before = envoy.stats().await.expect("stats")[version_stat].clone();

    // A real shared object for this machine that is no Envoy module: Envoy's own libc.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .expect("a libc.so.6 to stand in for a module without hooks");
    let module = std::fs::read(&build_a).expect("read A");
    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a shared object without the entry hooks",
            libc,
            "does not export 21: envoy_dynamic_module_on_program_init",
        ),
        (
            "not ELF",
            b"#!/bin/sh\necho not a module\n".to_vec(),
            "not a ELF shared object file: no ELF magic number",
        ),
        (
            "a truncated module",
            module[..module.len() / 2].to_vec(),
            "ELF shared object",
        ),
    ];
    for (row, bytes, needle) in &rows {
        let sha = sha256_hex(bytes);
        mesh.publish("libauthz.so", bytes).expect("publish bad");
        let reason = mesh.wait_for_rejection("authz", &sha, row).await;
        assert!(
            reason.contains(needle),
            "{row}: {reason} should contain {needle}"
        );
    }

    mesh.wait_until_served_by(0, "authz/a").await;
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["publishes"], 1,
        "only build A was ever published: {plugin}"
    );
    let version_after = envoy.stats().await.expect("stats")[version_stat].clone();
    assert_eq!(version_after, version_before, "Envoy was sent nothing new");
    for stat in ["config_fail", "update_rejected"] {
        let name = format!("extension_config_discovery.http_filter.authz.{stat}");
        assert_eq!(envoy.stat(&name).await.expect("stats"), 0, "{name}");
    }
}
