use meshplug_sdk::mock::{Harness, Request};
use meshplug_sdk::{MetadataSource, Property};

use super::{NAMESPACE, StreamFacts};

fn harness() -> Harness<StreamFacts> {
    let mut harness = Harness::<StreamFacts>::new("{}").expect("config");
    let host = &mut harness.host;
    host.properties
        .insert(Property::SourceAddress, "127.0.0.1:5000".into());
    host.properties
        .insert(Property::RequestProtocol, "HTTP/1.1".into());
    let greeting = (
        MetadataSource::Route,
        NAMESPACE.to_string(),
        "greeting".to_string(),
    );
    host.metadata.insert(greeting, "hi from the route".into());
    harness.upstream.trailers = vec![("grpc-status".into(), "0".into())];
    harness
}

#[test]
fn request_facts_reach_the_upstream() {
    let request = Request::post("/", "body")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .trailer("x-checksum", "c0ffee");
    let exchange = harness().send(&request);
    let up = |name| exchange.upstream_header(name);
    assert_eq!(up("x-facts-source").as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(up("x-facts-protocol").as_deref(), Some("HTTP/1.1"));
    assert_eq!(up("x-facts-values").as_deref(), Some("a,b"));
    assert_eq!(up("x-facts-pairs").as_deref(), Some("2"));
    assert_eq!(up("x-facts-greeting").as_deref(), Some("hi from the route"));
    assert!(
        exchange
            .upstream_trailers
            .contains(&("x-facts-checked".into(), "c0ffee".into()))
    );
    assert_eq!(exchange.upstream_body, b"body");
}

#[test]
fn response_facts_reach_the_client() {
    let mut harness = harness();
    let request = Request::post("/", "x").trailer("x-checksum", "c0ffee");
    let first = harness.send(&request);
    let second = harness.send(&Request::get("/"));
    assert_eq!(first.response_header("x-facts-count").as_deref(), Some("1"));
    assert_eq!(
        second.response_header("x-facts-count").as_deref(),
        Some("2")
    );
    assert_eq!(
        first.response_header("x-facts-state").as_deref(),
        Some("seen")
    );
    assert_eq!(
        first.response_header("x-facts-metadata").as_deref(),
        Some("yes")
    );
    assert_eq!(
        first.response_header("x-facts-trailer").as_deref(),
        Some("c0ffee")
    );
    let served = ("x-facts-served".to_string(), "stream-facts".to_string());
    assert!(
        first.response_trailers.contains(&served),
        "{:?}",
        first.response_trailers
    );
}

#[test]
fn as_wasm_dynamic_metadata_is_reported_unsupported() {
    let mut harness = harness();
    harness.host.as_wasm = true;
    let exchange = harness.send(&Request::get("/"));
    assert_eq!(
        exchange.response_header("x-facts-metadata").as_deref(),
        Some("unsupported")
    );
}

#[test]
fn without_route_settings_or_trailers_nothing_is_invented() {
    let mut harness = Harness::<StreamFacts>::new("").expect("config");
    let exchange = harness.send(&Request::get("/"));
    assert_eq!(exchange.upstream_header("x-facts-greeting"), None);
    assert_eq!(exchange.response_header("x-facts-trailer"), None);
    assert!(exchange.response_trailers.is_empty());
}

#[test]
fn a_request_asking_for_a_delay_is_held_on_a_timer() {
    let mut harness = harness();
    let exchange = harness.send(&Request::get("/").header("x-facts-delay-ms", "40"));
    assert_eq!(
        exchange.upstream_header("x-facts-waited").as_deref(),
        Some("40")
    );
    assert_eq!(harness.host.timers.len(), 1);
    let quick = harness.send(&Request::get("/"));
    assert_eq!(quick.upstream_header("x-facts-waited"), None);
}

#[test]
fn a_request_asking_for_a_grpc_call_is_held_for_its_answer() {
    let mut harness = harness();
    harness.answer_grpc_calls(|call| {
        assert_eq!(
            call.header(":path"),
            Some("/envoy.service.auth.v3.Authorization/Check")
        );
        meshplug_sdk::GrpcResponse {
            status: 0,
            message: None,
            body: vec![0x0a, 0x00],
        }
    });
    let exchange = harness.send(&Request::get("/").header("x-facts-grpc", "grpc"));
    assert_eq!(
        exchange.upstream_header("x-facts-grpc-answer").as_deref(),
        Some("0/2")
    );
    assert!(exchange.calls[0].grpc);
    let refused = harness.send(&Request::get("/").header("x-facts-grpc", "elsewhere"));
    assert_eq!(refused.status(), 400);
}

#[test]
fn an_unanswered_grpc_call_reports_unavailable() {
    let mut harness = harness();
    let exchange = harness.send(&Request::get("/").header("x-facts-grpc", "grpc"));
    assert_eq!(
        exchange.upstream_header("x-facts-grpc-answer").as_deref(),
        Some("14/0")
    );
}

#[test]
fn a_shouted_body_reaches_the_upstream_upper_cased_however_it_is_chunked() {
    let mut harness = harness();
    for chunk in [1, 3, 100] {
        let request = Request::post("/", "quiet words")
            .header("x-facts-shout", "1")
            .chunked(chunk);
        assert_eq!(
            harness.send(&request).upstream_body,
            b"QUIET WORDS",
            "{chunk}"
        );
    }
    let quiet = harness.send(&Request::post("/", "quiet words"));
    assert_eq!(quiet.upstream_body, b"quiet words");
}
