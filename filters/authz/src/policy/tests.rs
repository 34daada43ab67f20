use super::*;

fn config() -> AuthzConfig {
    parse_config(br#"{"api_keys": ["alpha", "beta"]}"#).expect("valid config")
}

#[test]
fn missing_key_is_401() {
    assert!(matches!(
        decide(&config(), None),
        Decision::Deny { status: 401, .. }
    ));
    assert!(matches!(
        decide(&config(), Some("  ")),
        Decision::Deny { status: 401, .. }
    ));
}

#[test]
fn unknown_key_is_403() {
    assert!(matches!(
        decide(&config(), Some("gamma")),
        Decision::Deny { status: 403, .. }
    ));
}

#[test]
fn known_key_is_allowed() {
    assert_eq!(decide(&config(), Some("beta")), Decision::Allow);
    assert_eq!(decide(&config(), Some(" alpha ")), Decision::Allow);
}

#[test]
fn header_defaults_and_is_lowercased() {
    assert_eq!(config().header, "x-api-key");
    let custom = parse_config(br#"{"header": "X-Key", "api_keys": []}"#).expect("valid");
    assert_eq!(custom.header, "x-key");
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    for (input, needle) in [
        (&b"not json"[..], "expected"),
        (br#"{"api_keys": ["a"], "extra": 1}"#, "unknown field"),
        (br#"{}"#, "api_keys"),
        (br#"{"header": " ", "api_keys": []}"#, "header"),
        (br#"{"api_keys": [""]}"#, "empty key"),
    ] {
        let err = parse_config(input).expect_err("must be refused");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
}
