use meshplug_sdk::mock::{Harness, Request};

use super::*;

#[test]
fn request_and_response_edits_apply_in_order() {
    let config = r#"{
        "request": {"remove": ["x-drop"], "set": {"X-Env": "prod"}, "add": {"x-tag": "b"}},
        "response": {"set": {"cache-control": "no-store"}, "remove": ["server"]}
    }"#;
    let mut rewrite = Harness::<HeaderRewrite>::new(config).expect("config");
    let exchange = rewrite.send(
        &Request::get("/")
            .header("x-drop", "1")
            .header("x-env", "dev")
            .header("x-tag", "a"),
    );
    let upstream = exchange.upstream_headers.clone().expect("forwarded");
    assert!(!upstream.iter().any(|(k, _)| k == "x-drop"));
    assert_eq!(exchange.upstream_header("x-env").as_deref(), Some("prod"));
    let tags: Vec<&str> = upstream
        .iter()
        .filter(|(k, _)| k == "x-tag")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(tags, ["a", "b"]);
    assert_eq!(
        exchange.response_header("cache-control").as_deref(),
        Some("no-store")
    );
}

#[test]
fn an_empty_configuration_changes_nothing() {
    let mut rewrite = Harness::<HeaderRewrite>::new("{}").expect("config");
    let exchange = rewrite.send(&Request::get("/").header("x-a", "1"));
    assert_eq!(exchange.upstream_header("x-a").as_deref(), Some("1"));
}

#[test]
fn invalid_headers_are_refused() {
    for (config, needle) in [
        (r#"{"request": {"set": {":path": "/x"}}}"#, "pseudo-headers"),
        (
            r#"{"response": {"add": {"bad name": "x"}}}"#,
            "not a valid header name",
        ),
        (
            r#"{"request": {"set": {"x-a": "1\r\nx-b: 2"}}}"#,
            "CR, LF or NUL",
        ),
        (r#"{"request": {"rename": {}}}"#, "unknown field"),
    ] {
        let err = Harness::<HeaderRewrite>::new(config).expect_err(config);
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
}
