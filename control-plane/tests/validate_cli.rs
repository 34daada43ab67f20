//! `meshplug validate` gives the pre-flight verdict offline: exit 0 and a JSON report for a
//! good artifact, exit 1 and the cause on standard error for a bad one.

use std::path::PathBuf;
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn validate(config: &str) -> std::process::Output {
    validate_file("config.json", config)
}

/// `meshplug validate` of the authz build with `config` written as `file`.
fn validate_file(file: &str, config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join(file);
    std::fs::write(&config_path, config).expect("config");
    let artifact = repo("target/filters/authz.wasm");
    assert!(artifact.exists(), "run `make filters` first");
    Command::new(env!("CARGO_BIN_EXE_meshplug"))
        .arg("validate")
        .arg(&artifact)
        .arg("--config")
        .arg(&config_path)
        .arg("--fixtures")
        .arg(repo("filters/authz/preflight/fixtures.json"))
        .arg("--schema")
        .arg(repo("filters/authz/preflight/config.schema.json"))
        .output()
        .expect("runs")
}

#[test]
fn a_good_artifact_passes_with_a_report() {
    let output = validate(r#"{"api_keys": ["k1"]}"#);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["fixtures_passed"], 2);
    assert_eq!(report["abi_version"], "0_2_1");
}

#[test]
fn a_bad_config_fails_naming_the_field() {
    let output = validate(r#"{"api_keys": ["k1"], "header": ""}"#);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("configuration invalid at /header"),
        "{stderr}"
    );
}

#[test]
fn the_config_file_follows_the_serve_rule_by_extension() {
    let output = validate_file("config.json", "api_keys: [k1]");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    // As `.config` the same text is handed over as written: here the authz schema refuses it,
    // so the text reached the pre-flight rather than the JSON check.
    let output = validate_file("authz.config", "api_keys: [k1]");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not valid JSON"), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
}
