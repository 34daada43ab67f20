//! The compatibility corpus (`../shared/compat/`, the public proxy-wasm Rust SDK's examples)
//! as a whole: every module its README lists is run through real Envoy by a scenario that
//! asserts what the README says, and the modules that cannot work in an HTTP filter slot are
//! refused before any push with the true reason.
//!
//! Which scenario runs which module is the table below; the test fails when the README lists
//! a module no scenario runs, or a scenario file does not name its module. The refusals run
//! here: `hello_world` (a root context only) and `envoy_tcp_routing` (a network filter),
//! each dropped into the `authz` slot of `bootstrap.yaml`.

use e2e::Mesh;
use e2e::paths::{compat_module, repo_root};
use e2e::rollout::sha256_of;

/// Each corpus module and the scenario (a file in `e2e/tests/`) that runs it as the corpus
/// README describes.
const SCENARIOS: [(&str, &str); 7] = [
    ("http_headers.wasm", "compat_http.rs"),
    ("http_body.wasm", "compat_http.rs"),
    ("http_config.wasm", "config_text.rs"),
    ("http_auth_random.wasm", "callout_cluster.rs"),
    ("envoy_filter_metadata.wasm", "builtin_filter.rs"),
    ("hello_world.wasm", "compat_corpus.rs"),
    ("envoy_tcp_routing.wasm", "compat_corpus.rs"),
];

/// The modules the corpus README's table lists (its first column).
fn listed_modules() -> Vec<String> {
    let readme = compat_module("README.md").expect("the corpus README");
    let text = std::fs::read_to_string(readme).expect("readable");
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(module, _)| module.to_string()))
        .filter(|module| module.ends_with(".wasm"))
        .collect()
}

#[test]
fn every_module_the_readme_lists_has_a_scenario_that_runs_it() {
    let listed = listed_modules();
    assert!(listed.len() >= 7, "the README's table: {listed:?}");
    for module in &listed {
        let (_, scenario) = SCENARIOS
            .iter()
            .find(|(m, _)| m == module)
            .unwrap_or_else(|| panic!("{module} is in the corpus README but no scenario runs it"));
        let path = repo_root().join("e2e/tests").join(scenario);
        let text = std::fs::read_to_string(&path).expect("scenario file");
        let stem = module.trim_end_matches(".wasm");
        assert!(text.contains(stem), "{scenario} does not run {module}");
        assert!(
            compat_module(module).is_ok(),
            "{module} is missing from the corpus"
        );
    }
}

/// Drops corpus module `module` into the `authz` slot and waits for its refusal; returns it.
async fn refused(mesh: &Mesh, module: &str) -> String {
    let source = compat_module(module).expect("corpus");
    let published = mesh.publish_copy(&source, "authz.wasm").expect("build");
    let sha = sha256_of(&published).expect("sha");
    let reason = mesh.wait_for_rejection("authz", &sha, module).await;
    let on_node = mesh
        .control_plane
        .filter_on_node("envoy-1", "authz")
        .await
        .expect("nodes");
    let never_sent = !on_node.to_string().contains(&sha);
    assert!(never_sent, "{module} reached the proxy: {on_node}");
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_only_module_and_a_network_filter_are_refused_before_any_push() {
    let mut mesh = Mesh::start().await.expect("mesh starts");
    let reason = refused(&mesh, "hello_world.wasm").await;
    assert!(
        reason.contains("not an HTTP filter") && reason.contains("background-only"),
        "{reason}"
    );
    let reason = refused(&mesh, "envoy_tcp_routing.wasm").await;
    assert!(
        reason.contains("not an HTTP filter") && reason.contains("network (TCP) filter"),
        "{reason}"
    );
    // The slot still passes traffic: nothing was pushed.
    let answer = mesh.get(0, "/", &[]).await.expect("get");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(mesh.envoys[0].process().is_running());
}
