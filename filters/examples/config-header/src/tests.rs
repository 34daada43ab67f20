use meshplug_sdk::mock::{Harness, Request};

use super::ConfigHeader;

const TEXT: &str = "The secret to life is meaningless unless you discover it yourself";

#[test]
fn the_text_reaches_every_response_byte_for_byte() {
    let mut harness = Harness::<ConfigHeader>::new(TEXT).expect("plain text is the configuration");
    let exchange = harness.send(&Request::get("/"));
    assert_eq!(
        exchange.response_header("custom-header").as_deref(),
        Some(TEXT)
    );
    let json_looking = Harness::<ConfigHeader>::new(r#"{"a": 1}"#).expect("any text");
    assert_eq!(json_looking.config().value, r#"{"a": 1}"#);
}

#[test]
fn empty_or_multiline_text_is_refused() {
    let empty = Harness::<ConfigHeader>::new("").expect_err("empty");
    assert!(empty.to_string().contains("empty"), "{empty}");
    assert!(Harness::<ConfigHeader>::new("a\nb").is_err());
}
