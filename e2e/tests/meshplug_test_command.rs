//! `meshplug test` against three Envoy configurations written like a user's (not meshplug's
//! bootstraps): a Wasm filter inline among built-in filters, two listeners with a route to a
//! faked cluster, and a dynamic module after a Lua filter. Passing cases pass (a swap under
//! load included, with no non-2xx); cases written to fail fail with a readable diff and exit
//! 1; the JUnit XML parses and says the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::paths::{envoy_binary, filter_artifact, meshplug_binary, repo_root};

fn testdata(file: &str) -> PathBuf {
    repo_root().join("e2e/testdata/user-envoy").join(file)
}

fn meshplug_test(config: &str, cases: &str, build: &Path, junit: Option<&Path>) -> Output {
    let mut command = Command::new(meshplug_binary().expect("meshplug built"));
    command
        .arg("test")
        .arg("--envoy-config")
        .arg(testdata(config))
        .arg("--cases")
        .arg(testdata(cases))
        .arg(format!("--filter=authz={}", build.display()))
        .arg("--envoy")
        .arg(envoy_binary().expect("envoy installed"));
    if let Some(junit) = junit {
        command.arg("--junit").arg(junit);
    }
    command.output().expect("meshplug test runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn passing_cases_pass_against_each_users_configuration() {
    let wasm = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let module = filter_artifact("test/libauthz-a.so").expect("test filters built");
    for (config, cases, build, count) in [
        (
            "wasm-among-builtins.yaml",
            "wasm-among-builtins.cases.yaml",
            &wasm,
            5,
        ),
        ("two-listeners.yaml", "two-listeners.cases.yaml", &wasm, 4),
        (
            "dynamic-module.yaml",
            "dynamic-module.cases.yaml",
            &module,
            3,
        ),
    ] {
        let output = meshplug_test(config, cases, build, None);
        let said = text(&output);
        println!("{config}:\n{said}");
        assert_eq!(output.status.code(), Some(0), "{config}: {said}");
        assert!(
            said.contains(&format!("{count} cases, {count} passed, 0 failed")),
            "{config}: {said}"
        );
    }
}

#[test]
fn cases_written_to_fail_fail_readably_with_junit() {
    let wasm = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let output = meshplug_test(
        "two-listeners.yaml",
        "two-listeners.failing.yaml",
        &wasm,
        Some(&junit),
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL written to fail on the status"),
        "{said}"
    );
    assert!(said.contains("expected status 200, got 401"), "{said}");
    assert!(said.contains("body \"missing API key\\n\""), "{said}");
    assert!(
        said.contains("stat http.public.downstream_rq_2xx: moved by 1, expected 2"),
        "{said}"
    );
    assert!(said.contains("ok   this one passes"), "{said}");
    assert!(said.contains("authz was refused: "), "{said}");
    assert!(said.contains("5 cases, 1 passed, 4 failed"), "{said}");
    assert!(said.contains("Envoy's log: "), "{said}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("tests"), Some("5"));
    assert_eq!(suite.attribute("failures"), Some("4"));
    let failed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter(|n| n.children().any(|c| c.has_tag_name("failure")))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(
        failed,
        [
            "written to fail on the status",
            "written to fail on a stat",
            "no such listener",
            "a swap to a build the pre-flight refuses",
        ]
    );
}

#[test]
fn a_configuration_envoy_refuses_is_shown_in_envoys_words() {
    let wasm = filter_artifact("test/authz-a.wasm").expect("test filters built");
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    let text_of = std::fs::read_to_string(testdata("two-listeners.yaml")).expect("read");
    std::fs::write(
        &broken,
        text_of.replace("connect_timeout: 2s", "connect_timeout: soon"),
    )
    .expect("write");
    let cases = testdata("two-listeners.cases.yaml");
    let output = Command::new(meshplug_binary().expect("meshplug built"))
        .args(["test", "--envoy-config"])
        .arg(&broken)
        .arg("--cases")
        .arg(&cases)
        .arg(format!("--filter=authz={}", wasm.display()))
        .arg("--envoy")
        .arg(envoy_binary().expect("envoy"))
        .output()
        .expect("runs");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("Envoy refuses the configuration as rendered"),
        "{said}"
    );
    assert!(
        said.contains("connect_timeout") || said.contains("Duration"),
        "{said}"
    );
}

#[test]
fn bodies_by_pattern_and_json_and_the_filters_log_lines() {
    let module = e2e::paths::compat_module("http_headers.wasm").expect("the compat corpus");
    let output = meshplug_test(
        "wasm-among-builtins.yaml",
        "headers-log.cases.yaml",
        &module,
        None,
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ok   the filter answers /hello itself"),
        "{said}"
    );
    assert!(
        said.contains("ok   it logs every request header, and the upstream's JSON comes through"),
        "{said}"
    );
    assert!(said.contains("$.total is 1, expected 2"), "{said}");
    assert!(
        said.contains("log: no line Envoy logged contains \"x-never-sent\""),
        "{said}"
    );
    assert!(said.contains("3 cases, 2 passed, 1 failed"), "{said}");
}
