use meshplug_sdk::mock::{Harness, Request};

use super::{BodyRedaction, notice};

fn answer(body: &str, chunk: Option<usize>) -> meshplug_sdk::mock::Exchange {
    let mut harness = Harness::<BodyRedaction>::new("{}").expect("config");
    harness.upstream.headers = vec![("content-length".into(), body.len().to_string())];
    harness.upstream.body = body.as_bytes().to_vec();
    harness.upstream.chunk_size = chunk;
    harness.send(&Request::get("/"))
}

#[test]
fn a_body_with_a_secret_is_replaced_whole_even_split_across_chunks() {
    let body = "here is a secret, kept\n";
    for chunk in [None, Some(1), Some(4)] {
        let exchange = answer(body, chunk);
        assert_eq!(exchange.body(), notice(body.len()).as_bytes(), "{chunk:?}");
        assert_eq!(exchange.response_header("content-length"), None);
    }
}

#[test]
fn other_bodies_pass_unchanged() {
    let exchange = answer("nothing to hide\n", Some(3));
    assert_eq!(exchange.body(), b"nothing to hide\n");
    assert_eq!(exchange.status(), 200);
}

#[test]
fn a_configured_marker_is_used_and_an_empty_one_refused() {
    let mut harness = Harness::<BodyRedaction>::new(r#"{"marker": "pin"}"#).expect("config");
    harness.upstream.body = b"pin 1234".to_vec();
    assert_eq!(
        harness.send(&Request::get("/")).body(),
        notice(8).as_bytes()
    );
    assert!(Harness::<BodyRedaction>::new(r#"{"marker": ""}"#).is_err());
}
