//! The filter through the SDK's mock host: the same path both backends take.

use meshplug_sdk::mock::{Harness, Request};

use super::*;

const CONFIG: &str = r#"{"api_keys": ["k1"], "bearer_tokens": ["t1"],
    "rules": [{"prefix": "/public", "anonymous": true}]}"#;

#[test]
fn allowed_requests_are_tagged_and_reach_the_upstream() {
    let mut authz = Harness::<Authz>::new(CONFIG).expect("config");
    let exchange = authz.send(&Request::get("/orders").header("x-api-key", "k1"));
    assert_eq!(exchange.status(), 200);
    assert!(exchange.upstream_headers.is_some());
    assert_eq!(
        exchange.response_header(FILTER_HEADER).as_deref(),
        Some(filter_tag())
    );
    let bearer = authz.send(&Request::get("/orders").header("authorization", "Bearer t1"));
    assert_eq!(bearer.status(), 200);
}

#[test]
fn denials_are_local_replies_and_counted() {
    let mut authz = Harness::<Authz>::new(CONFIG).expect("config");
    let missing = authz.send(&Request::get("/orders"));
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.upstream_headers, None);
    assert_eq!(
        missing.response_header("www-authenticate").as_deref(),
        Some("Bearer realm=\"meshplug\"")
    );
    let unknown = authz.send(&Request::get("/orders").header("x-api-key", "nope"));
    assert_eq!(unknown.status(), 403);
    assert_eq!(authz.host.counters.get("authz_denied"), Some(&2));
    assert_eq!(
        authz.host.counters.get("meshplug_heartbeat_authz"),
        Some(&2)
    );
}

#[test]
fn anonymous_paths_need_no_credential() {
    let mut authz = Harness::<Authz>::new(CONFIG).expect("config");
    assert_eq!(authz.send(&Request::get("/public/x")).status(), 200);
}

#[test]
fn invalid_configuration_is_refused() {
    let err = Harness::<Authz>::new(r#"{"api_keys": "k1"}"#).expect_err("wrong type");
    assert!(
        err.to_string().starts_with("invalid authz configuration"),
        "{err}"
    );
}
