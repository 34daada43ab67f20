use meshplug_sdk::MetadataSource;
use meshplug_sdk::mock::{Harness, Request};

use super::MetadataReader;

#[test]
fn metadata_set_earlier_is_answered() {
    let mut harness = Harness::<MetadataReader>::new("").expect("config");
    let at = (
        MetadataSource::Dynamic,
        "envoy.filters.http.lua".to_string(),
        "uppercased-custom-metadata".to_string(),
    );
    harness.host.metadata.insert(at, "HELLO".into());
    let exchange = harness.send(&Request::get("/"));
    assert_eq!(exchange.status(), 200);
    assert_eq!(
        exchange.response_header("uppercased-metadata").as_deref(),
        Some("HELLO")
    );
    assert_eq!(
        exchange.response_header("powered-by").as_deref(),
        Some("proxy-wasm")
    );
    assert_eq!(
        exchange.body(),
        b"Custom response with Envoy metadata: \"HELLO\"\n"
    );
}

#[test]
fn without_metadata_the_request_passes() {
    let mut harness = Harness::<MetadataReader>::new("").expect("config");
    let exchange = harness.send(&Request::get("/"));
    assert!(exchange.reply.is_none() && exchange.upstream_headers.is_some());
}
