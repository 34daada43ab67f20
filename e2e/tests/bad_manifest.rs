//! Each malformed manifest is refused with an error that names the file, the line and the
//! field, in the admin API and the log; the manifest in force before stays, and so does the
//! filter chain.

use e2e::Mesh;
use e2e::composed::{Ads, authz_config_yaml, plugin_manifest};
use e2e::paths::{filter_artifact, meshplug_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_manifests_are_refused_by_file_line_and_field() {
    let mut mesh = Mesh::start_composed(&[]).await.expect("mesh starts");
    let build = filter_artifact("authz.wasm").expect("filters built");
    mesh.publish_copy(&build, "authz.wasm").expect("publish");
    mesh.add_mesh_envoy("envoy-1", "{}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    let good = plugin_manifest("authz", "authz", "authn", &authz_config_yaml(), "");
    mesh.write_manifest("plugins", "authz.yaml", &good)
        .expect("write");
    mesh.wait_for_chain(0, &["authz"]).await;

    // (what, file, text, field, line)
    let cases: Vec<(&str, &str, String, &str, u64)> = vec![
        (
            "unknown field",
            "authz.yaml",
            good.replace("  phase:", "  colour: red\n  phase:"),
            "spec.colour",
            7,
        ),
        (
            "bad value",
            "authz.yaml",
            good.replace("phase: authn", "phase: first"),
            "spec.phase",
            7,
        ),
        (
            "wrong type",
            "authz.yaml",
            format!("{good}  priority: high\n"),
            "spec.priority",
            10,
        ),
        (
            "dangling listener",
            "authz.yaml",
            format!("{good}  listeners: [egress]\n"),
            "spec.listeners[0]",
            10,
        ),
        (
            "bad rollout",
            "authz.yaml",
            good.replace("rollout: immediate", "rollout:\n    steps: []"),
            "spec.rollout.steps",
            10,
        ),
        (
            "duplicate name",
            "copy.yaml",
            good.replace("phase: authn", "phase: stats"),
            "metadata.name",
            4,
        ),
        (
            "wrong apiVersion",
            "other.yaml",
            good.replace("v1alpha1", "v2").replace("authz\n", "other\n"),
            "apiVersion",
            1,
        ),
    ];
    for (what, file, text, field, line) in &cases {
        mesh.write_manifest("plugins", file, text).expect("write");
        let path = format!("plugins/{file}");
        let status = mesh
            .wait_for_manifest_where(&path, |s| s["error"]["field"] == *field)
            .await;
        let error = &status["error"];
        assert_eq!(error["file"], path.as_str(), "{what}: {status}");
        assert_eq!(error["line"], *line, "{what}: {status}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {status}"
        );
        if *file == "authz.yaml" {
            assert_eq!(
                status["in_force"][1], "authz",
                "{what}: the old manifest stays"
            );
        }
        let refused = mesh.control_plane.log_records("manifest refused");
        assert!(
            refused.iter().any(|r| r["fields"]["field"] == *field),
            "{what}: not in the log"
        );
        // The previous manifest, and the chain, stay in force.
        assert_eq!(
            mesh.chain_of(0).await.expect("dump"),
            ["authz", "envoy.filters.http.router"],
            "{what}"
        );
        assert_eq!(
            mesh.get(0, "/", &[]).await.expect("request").status,
            401,
            "{what}"
        );
        if *file != "authz.yaml" {
            mesh.remove_manifest("plugins", file).expect("remove");
        }
    }
    let admin = format!("http://{}", mesh.control_plane.addrs.admin);
    let output = std::process::Command::new(meshplug_binary().expect("meshplug built"))
        .args(["manifests", "--admin", &admin])
        .output()
        .expect("meshplug manifests");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("REFUSED (previous version in force)"),
        "{table}"
    );
    assert!(
        table.contains("plugins/authz.yaml:10: spec.rollout.steps:"),
        "{table}"
    );
    let plugin = mesh.control_plane.plugin("authz").await.expect("plugin");
    assert_eq!(
        plugin["config_json"], r#"{"api_keys":["test-key-1"]}"#,
        "{plugin}"
    );

    mesh.write_manifest("plugins", "authz.yaml", &good)
        .expect("write");
    let status = mesh
        .wait_for_manifest_where("plugins/authz.yaml", |s| s["error"].is_null())
        .await;
    assert_eq!(status["in_force"][1], "authz");
}
