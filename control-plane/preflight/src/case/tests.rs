use super::*;

#[test]
fn a_case_is_a_fixture_with_more_fields() {
    let file: CasesFile = serde_json::from_str(
        r#"{"upstreams": {"backend": {"status": 200, "body": "hi\n"}},
            "cases": [
              {"name": "allowed", "request": {"headers": {"x-api-key": "k1"}},
               "expect": {"status": 200, "upstream_headers": {"x-api-key": "k1"}},
               "stats": {"http.ingress.downstream_rq_2xx": 1}},
              {"name": "swap", "listener": "admin-api", "http2": true, "steps": [
                 {"send": {"expect": {"status": 401}}},
                 {"swap": {"filter": "authz", "config": {"api_keys": []}}},
                 {"load": {"requests": 100, "connections": 4,
                           "swap": {"filter": "authz", "build": "b.wasm"}}}]}]}"#,
    )
    .expect("parses");
    assert_eq!(file.upstreams["backend"].body, "hi\n");
    let allowed = &file.cases[0];
    assert!(allowed.check().is_ok());
    let steps = allowed.steps();
    assert!(matches!(&steps[..], [Step::Send(send)]
        if send.expect.status == Some(200) && send.stats["http.ingress.downstream_rq_2xx"] == 1));
    let swap = &file.cases[1];
    assert_eq!(swap.steps().len(), 3);
    assert!(swap.http2);
    assert!(
        matches!(&swap.steps[2], Step::Load(load) if load.connections == 4 && load.swap.is_some())
    );
}

#[test]
fn a_case_with_both_a_request_and_steps_is_refused() {
    let case: Case = serde_json::from_str(
        r#"{"name": "both", "expect": {"status": 200}, "steps": [{"send": {}}]}"#,
    )
    .expect("parses");
    assert!(case.check().expect_err("refused").contains("not both"));
    let unknown = serde_json::from_str::<Case>(r#"{"name": "typo", "expext": {}}"#);
    assert!(unknown.is_err(), "unknown fields are refused");
}
