use meshplug_sdk::CallResponse;
use meshplug_sdk::mock::{Harness, Request};

use super::CalloutAuth;

fn harness(first_byte: Option<u8>) -> Harness<CalloutAuth> {
    let mut harness = Harness::<CalloutAuth>::new("").expect("empty config is the default");
    harness.answer_calls(move |_| match first_byte {
        Some(byte) => CallResponse::ok(200, vec![byte]),
        None => CallResponse::failed("reset"),
    });
    harness
}

#[test]
fn an_even_byte_lets_the_request_through_tagged() {
    let exchange = harness(Some(0x42)).send(&Request::get("/"));
    assert_eq!(exchange.status(), 200);
    assert!(exchange.upstream_headers.is_some(), "reached the upstream");
    assert_eq!(
        exchange.response_header("powered-by").as_deref(),
        Some("proxy-wasm")
    );
    let call = &exchange.calls[0];
    assert_eq!(call.cluster, "httpbin");
    assert_eq!(call.header(":path"), Some("/bytes/1"));
    assert_eq!(call.header(":authority"), Some("httpbin.org"));
}

#[test]
fn an_odd_byte_an_empty_body_or_a_failed_call_is_forbidden() {
    for answer in [Some(0x43), None] {
        let exchange = harness(answer).send(&Request::get("/"));
        assert_eq!(exchange.status(), 403, "{answer:?}");
        assert_eq!(exchange.body(), b"Access forbidden.\n");
        assert_eq!(
            exchange.response_header("powered-by").as_deref(),
            Some("proxy-wasm")
        );
        assert!(exchange.upstream_headers.is_none());
    }
    let mut empty = Harness::<CalloutAuth>::new("").expect("config");
    empty.answer_calls(|_| CallResponse::ok(200, Vec::new()));
    assert_eq!(empty.send(&Request::get("/")).status(), 403);
}

#[test]
fn a_cluster_envoy_does_not_know_is_forbidden_at_once() {
    let mut harness = harness(Some(0));
    harness.host.clusters = vec!["elsewhere".into()];
    let exchange = harness.send(&Request::get("/"));
    assert_eq!(exchange.status(), 403);
    assert!(exchange.calls.is_empty());
}

#[test]
fn settings_are_checked() {
    let error = Harness::<CalloutAuth>::new(r#"{"cluster": ""}"#).expect_err("refused");
    assert!(
        error.to_string().contains("cluster must not be empty"),
        "{error}"
    );
    assert!(Harness::<CalloutAuth>::new(r#"{"clustr": "x"}"#).is_err());
}

#[test]
fn only_configured_paths_are_checked() {
    let mut harness = Harness::<CalloutAuth>::new(r#"{"paths": ["/checked"]}"#).expect("config");
    harness.answer_calls(|_| CallResponse::ok(200, "1"));
    let free = harness.send(&Request::get("/free"));
    assert_eq!((free.status(), free.calls.len()), (200, 0));
    assert_eq!(free.response_header("powered-by"), None);
    assert_eq!(harness.send(&Request::get("/checked/x")).status(), 403);
}
