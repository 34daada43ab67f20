use super::*;

fn policy(json: &str) -> Result<AuthzPolicy, Error> {
    check(serde_json::from_str(json).map_err(|e| Error::config("authz", e.to_string()))?)
}

fn base() -> AuthzPolicy {
    policy(
        r#"{"api_keys": ["alpha", "beta"], "bearer_tokens": ["tok"],
            "rules": [{"prefix": "/admin", "allow": ["alpha"]},
                      {"prefix": "/admin/public", "anonymous": true},
                      {"prefix": "/health", "anonymous": true}]}"#,
    )
    .expect("valid")
}

fn status(decision: Decision) -> u16 {
    match decision {
        Decision::Allow => 200,
        Decision::Deny { status, .. } => status,
    }
}

#[test]
fn credentials_are_needed_and_must_be_known() {
    let p = base();
    assert_eq!(status(decide(&p, "/orders", None)), 401);
    assert_eq!(status(decide(&p, "/orders", Some("gamma"))), 403);
    assert_eq!(status(decide(&p, "/orders", Some("beta"))), 200);
    assert_eq!(status(decide(&p, "/orders", Some("tok"))), 200);
}

#[test]
fn the_longest_matching_rule_applies() {
    let p = base();
    assert_eq!(status(decide(&p, "/admin/users", Some("beta"))), 403);
    assert_eq!(status(decide(&p, "/admin/users", Some("alpha"))), 200);
    assert_eq!(status(decide(&p, "/admin/public/x", None)), 200);
    assert_eq!(status(decide(&p, "/health?verbose=1", None)), 200);
    assert_eq!(
        status(decide(&p, "/healthz", None)),
        200,
        "prefix match, as configured"
    );
}

#[test]
fn a_query_cannot_smuggle_a_rule() {
    let p = base();
    assert_eq!(status(decide(&p, "/orders?/health", None)), 401);
}

#[test]
fn credential_prefers_the_key_header_then_bearer() {
    assert_eq!(credential(Some(" k "), Some("Bearer t")), Some("k"));
    assert_eq!(credential(None, Some("bearer  t ")), Some("t"));
    assert_eq!(credential(Some(""), Some("Basic abc")), None);
    assert_eq!(credential(None, Some("Bearer")), None);
}

#[test]
fn header_defaults_and_is_lowercased() {
    assert_eq!(base().header, "x-api-key");
    let custom = policy(r#"{"header": "X-Key"}"#).expect("valid");
    assert_eq!(custom.header, "x-key");
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    for (input, needle) in [
        (r#"{"header": " "}"#, "header"),
        (r#"{"api_keys": [""]}"#, "empty key"),
        (r#"{"bearer_tokens": [""]}"#, "empty token"),
        (r#"{"rules": [{"prefix": "admin"}]}"#, "must start with /"),
        (
            r#"{"api_keys": ["a"], "rules": [{"prefix": "/x", "allow": ["b"]}]}"#,
            "not a configured",
        ),
    ] {
        let err = policy(input).expect_err("must be refused");
        assert!(err.to_string().contains(needle), "{input}: {err}");
    }
}
