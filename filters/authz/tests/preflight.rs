//! The built `authz.wasm` (from `make filters`) passes the pre-flight sandbox with its shipped
//! fixtures and schema, plus an allowed request; the schema refuses what the filter refuses.

use std::path::PathBuf;

use meshplug_preflight::{Expectation, Fixture, FixtureRequest, Limits, Preflight, parse_fixtures};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn built_module() -> Vec<u8> {
    let path = repo().join("target/filters/authz.wasm");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make filters` first", path.display()))
}

fn shipped(file: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("preflight")
            .join(file),
    )
    .expect("shipped preflight file")
}

fn schema() -> serde_json::Value {
    serde_json::from_slice(&shipped("config.schema.json")).expect("schema is JSON")
}

#[test]
fn built_filter_passes_its_fixtures_in_the_sandbox() {
    let mut fixtures = parse_fixtures(&shipped("fixtures.json")).expect("fixtures parse");
    fixtures.push(Fixture {
        name: "a configured key goes through, tagged".into(),
        request: FixtureRequest {
            headers: [("x-api-key".to_string(), "k1".to_string())].into(),
            ..Default::default()
        },
        upstream: Default::default(),
        callouts: Vec::new(),
        chunk_size: None,
        ticks: 0,
        properties: Vec::new(),
        expect: Expectation {
            status: Some(200),
            local_reply: Some(false),
            body_contains: Some("upstream ok".into()),
            upstream_headers: [("x-api-key".to_string(), "k1".to_string())].into(),
            ..Default::default()
        },
    });
    let preflight = Preflight::new(Limits::default()).expect("engine");
    let report = preflight
        .run(
            "authz",
            &built_module(),
            br#"{"api_keys": ["k1"]}"#,
            &fixtures,
            Some(&schema()),
        )
        .expect("the built filter passes");
    assert_eq!(report.fixtures_passed, 3);
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.contains("authz: configuration accepted")),
        "{:?}",
        report.logs
    );
}

#[test]
fn schema_and_filter_refuse_the_same_configurations() {
    let preflight = Preflight::new(Limits::default()).expect("engine");
    for config in [
        &br#"{"api_keys": "k1"}"#[..],
        br#"{"api_keys": ["k1"], "extra": true}"#,
        br#"{"rules": [{"prefix": "admin"}]}"#,
        br#"{"api_keys": [""]}"#,
    ] {
        let loaded = meshplug_sdk::mock::Harness::<authz::Authz>::new(
            std::str::from_utf8(config).expect("utf-8"),
        );
        assert!(loaded.is_err(), "the filter refuses it");
        let err = preflight
            .run("authz", &built_module(), config, &[], Some(&schema()))
            .expect_err("the schema refuses it");
        assert!(
            err.to_string().contains("configuration invalid at"),
            "{err}"
        );
    }
}
