use meshplug_sdk::mock::{Harness, Request};

use super::*;

const CONFIG: &str = r#"{"capacity": 2, "refill_per_second": 1}"#;

#[test]
fn the_third_request_in_a_burst_gets_429_with_retry_after() {
    let mut limit = Harness::<Ratelimit>::new(CONFIG).expect("config");
    let request = Request::get("/").header("x-api-key", "k1");
    let first = limit.send(&request);
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.response_header("x-ratelimit-remaining").as_deref(),
        Some("1")
    );
    assert_eq!(limit.send(&request).status(), 200);
    let third = limit.send(&request);
    assert_eq!(third.status(), 429);
    assert_eq!(third.response_header("retry-after").as_deref(), Some("1"));
    assert_eq!(third.upstream_headers, None);
    assert_eq!(limit.host.counters.get("ratelimit_limited"), Some(&1));
    limit.advance_ms(1000);
    assert_eq!(limit.send(&request).status(), 200, "refilled");
}

#[test]
fn an_empty_configuration_has_generous_defaults() {
    let mut limit = Harness::<Ratelimit>::new("{}").expect("defaults");
    let first = limit.send(&Request::get("/"));
    assert_eq!(
        first.response_header("x-ratelimit-remaining").as_deref(),
        Some("99")
    );
}

#[test]
fn other_keys_are_not_limited() {
    let mut limit =
        Harness::<Ratelimit>::new(r#"{"capacity": 1, "refill_per_second": 0}"#).expect("config");
    assert_eq!(
        limit
            .send(&Request::get("/").header("x-api-key", "a"))
            .status(),
        200
    );
    assert_eq!(
        limit
            .send(&Request::get("/").header("x-api-key", "a"))
            .status(),
        429
    );
    assert_eq!(
        limit
            .send(&Request::get("/").header("x-api-key", "b"))
            .status(),
        200
    );
}

#[test]
fn bad_configurations_are_refused() {
    for (config, needle) in [
        (r#"{"capacity": 0, "refill_per_second": 1}"#, "capacity"),
        (
            r#"{"capacity": 1, "refill_per_second": -1}"#,
            "refill_per_second",
        ),
        (r#"{"capacity": "1"}"#, "invalid type"),
        (
            r#"{"capacity": 1, "refill_per_second": 1, "burst": 3}"#,
            "unknown field",
        ),
        (
            r#"{"key_header": "", "capacity": 1, "refill_per_second": 1}"#,
            "key_header",
        ),
    ] {
        let err = Harness::<Ratelimit>::new(config).expect_err(config);
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
}
