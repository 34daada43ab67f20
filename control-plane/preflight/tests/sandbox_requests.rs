//! Requests in the sandbox as Envoy would drive them: callouts answered from the fixture
//! through the filter's own callbacks, and the smoke request that runs when no fixture is
//! given (refusing, with the reason, a module that cannot be an HTTP filter).

use meshplug_preflight::{CalloutResponse, Fixture, Limits, Preflight, Rejection, testing};

fn preflight() -> Preflight {
    Preflight::new(Limits {
        max_module_bytes: 1 << 20,
        fuel_per_call: 5_000_000,
        max_memory_bytes: 16 * 1024 * 1024,
    })
    .expect("engine")
}

fn module(request_headers: &str, extra: &str) -> Vec<u8> {
    let text = testing::proxy_wasm_wat("(i32.const 1)", "(i32.const 1)", request_headers, extra);
    wat::parse_str(&text).expect("valid WAT")
}

/// Calls cluster `httpbin` on each request and pauses; when the answer's first body byte is
/// even it resumes the request, when odd (or there is no body: a failed call) it answers 403
/// `Access forbidden.` (the behaviour of the public SDK's `http_auth_random` example).
fn caller() -> Vec<u8> {
    let extra = r#"
      (import "env" "proxy_http_call"
        (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
      (data (i32.const 200) "httpbin")
      (data (i32.const 240) "Access forbidden.")
      (func $forbid
        (drop (call $reply (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 240)
          (i32.const 17) (i32.const 0) (i32.const 0) (i32.const -1))))
      (func (export "proxy_on_http_call_response")
        (param $ctx i32) (param $token i32) (param $headers i32) (param $body i32) (param $trailers i32)
        (if (i32.eqz (local.get $body)) (then (call $forbid) (return)))
        (drop (call $get_buffer (i32.const 4) (i32.const 0) (i32.const 1) (i32.const 300) (i32.const 304)))
        (if (i32.and (i32.load8_u (i32.load (i32.const 300))) (i32.const 1))
          (then (call $forbid))
          (else (drop (call $continue (i32.const 0))))))
    "#;
    let request_headers = "(drop (call $http_call (i32.const 200) (i32.const 7) (i32.const 0) \
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) \
        (i32.const 320))) (i32.const 1)";
    module(request_headers, extra)
}

fn fixture(name: &str, callouts: Vec<CalloutResponse>, status: u16) -> Fixture {
    let mut fixture = Fixture::named(name);
    fixture.callouts = callouts;
    fixture.expect.status = Some(status);
    fixture
}

fn answer(body: &str) -> CalloutResponse {
    CalloutResponse {
        cluster: Some("httpbin".into()),
        body: body.into(),
        ..Default::default()
    }
}

#[test]
fn a_callout_answered_by_the_fixture_drives_the_filter_both_ways() {
    let fixtures = [
        fixture("even: through", vec![answer("0")], 200),
        fixture("odd: forbidden", vec![answer("1")], 403),
        fixture("no answer: the call fails", Vec::new(), 403),
        fixture("timeout", vec![CalloutResponse::failed()], 403),
    ];
    let report = preflight()
        .run("auth", &caller(), b"{}", &fixtures, None)
        .expect("every fixture passes");
    assert_eq!(report.fixtures_passed, 4);
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.contains("callout 0 to `httpbin`"))
    );
}

#[test]
fn a_callout_to_another_cluster_than_the_fixture_says_is_a_mismatch() {
    let mut wrong = answer("0");
    wrong.cluster = Some("ledger".into());
    let refused = preflight()
        .run(
            "auth",
            &caller(),
            b"{}",
            &[fixture("f", vec![wrong], 200)],
            None,
        )
        .expect_err("mismatch");
    assert!(
        refused.to_string().contains("went to cluster `httpbin`")
            && refused.to_string().contains("`ledger`"),
        "{refused}"
    );
}

#[test]
fn a_wrong_expectation_after_a_callout_is_still_caught() {
    let refused = preflight()
        .run(
            "auth",
            &caller(),
            b"{}",
            &[fixture("f", vec![answer("1")], 200)],
            None,
        )
        .expect_err("403, not 200");
    assert!(
        refused.to_string().contains("expected status 200, got 403"),
        "{refused}"
    );
}

#[test]
fn the_smoke_request_passes_a_callout_filter_and_a_plain_one() {
    preflight()
        .run("auth", &caller(), b"{}", &[], None)
        .expect("the failed callout is answered with 403, a legitimate outcome");
    let plain = module("(i32.const 0)", "");
    preflight()
        .run("plain", &plain, b"{}", &[], None)
        .expect("passes");
}

#[test]
fn the_smoke_request_refuses_a_filter_that_traps_on_every_request() {
    let trapping = module("unreachable", "");
    let refused = preflight()
        .run("bad", &trapping, b"{}", &[], None)
        .expect_err("refused without any fixture");
    assert!(
        matches!(&refused, Rejection::Trap { phase, .. } if phase == "proxy_on_request_headers"),
        "{refused}"
    );
}

/// A module whose root context makes no child context: creating one traps, as the Rust SDK
/// does for a root context without a context type.
fn background_only() -> Vec<u8> {
    let text = testing::proxy_wasm_wat("(i32.const 1)", "(i32.const 1)", "(i32.const 0)", "")
        .replace(
            r#"(func (export "proxy_on_context_create") (param i32 i32))"#,
            r#"(func (export "proxy_on_context_create") (param i32 i32)
                 (if (local.get 1) (then unreachable)))"#,
        );
    wat::parse_str(&text).expect("valid WAT")
}

#[test]
fn the_smoke_request_names_a_background_only_plugin() {
    let refused = preflight()
        .run("bg", &background_only(), b"{}", &[], None)
        .expect_err("refused");
    assert!(
        matches!(refused, Rejection::NotAnHttpFilter { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("background-only"), "{refused}");
}

#[test]
fn the_smoke_request_names_a_network_filter() {
    let extra =
        r#"(func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))"#;
    let network = module("unreachable", extra);
    let refused = preflight()
        .run("tcp", &network, b"{}", &[], None)
        .expect_err("refused");
    assert!(
        matches!(refused, Rejection::NotAnHttpFilter { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("network (TCP) filter"),
        "{refused}"
    );
}

#[test]
fn fixtures_replace_the_smoke_request() {
    // A background-only module with a fixture is judged by the fixture (which fails here
    // because the context cannot be made), not by the smoke request.
    let refused = preflight()
        .run(
            "bg",
            &background_only(),
            b"{}",
            &[fixture("f", Vec::new(), 200)],
            None,
        )
        .expect_err("refused");
    assert!(matches!(refused, Rejection::Trap { .. }), "{refused}");
}

/// Replaces the response body with `X`: `careful` waits for the end of stream (pausing, so
/// the chunks are buffered), the other rewrites whatever chunk it is handed.
fn body_rewriter(careful: bool) -> Vec<u8> {
    let wait = if careful {
        "(if (i32.eqz (local.get $end)) (then (return (i32.const 1))))"
    } else {
        ""
    };
    let extra = format!(
        r#"
      (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
      (data (i32.const 400) "X")
      (func (export "proxy_on_response_body") (param $ctx i32) (param $len i32) (param $end i32) (result i32)
        {wait}
        (drop (call $set_buffer (i32.const 1) (i32.const 0) (local.get $len) (i32.const 400) (i32.const 1)))
        (i32.const 0))
    "#
    );
    module("(i32.const 0)", &extra)
}

fn chunked(chunk_size: Option<usize>) -> Fixture {
    let mut fixture = Fixture::named("rewritten");
    fixture.upstream.body = "abcdefgh".into();
    fixture.chunk_size = chunk_size;
    fixture.expect.body = Some("X".into());
    fixture
}

#[test]
fn a_body_in_chunks_catches_a_filter_that_only_works_on_one_chunk() {
    let careful = body_rewriter(true);
    let naive = body_rewriter(false);
    for chunk_size in [None, Some(3), Some(1)] {
        preflight()
            .run("careful", &careful, b"{}", &[chunked(chunk_size)], None)
            .unwrap_or_else(|e| panic!("chunks {chunk_size:?}: {e}"));
    }
    preflight()
        .run("naive", &naive, b"{}", &[chunked(None)], None)
        .expect("one chunk hides the bug");
    let refused = preflight()
        .run("naive", &naive, b"{}", &[chunked(Some(3))], None)
        .expect_err("three chunks show it");
    assert!(
        refused.to_string().contains(r#"body "XXX", expected "X""#),
        "{refused}"
    );
}

#[test]
fn timers_fire_as_the_fixture_says() {
    // Sets a 1 s period at configure; lets requests through once the timer fired twice.
    let extra = r#"
      (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
      (global $ticks (mut i32) (i32.const 0))
      (func (export "proxy_on_tick") (param i32)
        (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))))
    "#;
    let request_headers = "(if (i32.lt_u (global.get $ticks) (i32.const 2)) (then \
        (drop (call $reply (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 0) \
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1))))) (i32.const 0)";
    let text = testing::proxy_wasm_wat(
        "(i32.const 1)",
        "(drop (call $period (i32.const 1000))) (i32.const 1)",
        request_headers,
        extra,
    );
    let wasm = wat::parse_str(&text).expect("valid WAT");
    let mut early = fixture("before the timer", Vec::new(), 503);
    early.ticks = 1;
    let mut late = fixture("after two ticks", Vec::new(), 200);
    late.ticks = 1;
    preflight()
        .run("timer", &wasm, b"{}", &[early, late], None)
        .expect("the second request sees two ticks");
}

#[test]
fn properties_are_what_the_fixture_sets() {
    // Answers 403 unless `source.address` is known.
    let extra = r#"
      (import "env" "proxy_get_property" (func $property (param i32 i32 i32 i32) (result i32)))
      (data (i32.const 500) "source\00address")
    "#;
    let request_headers = "(if (call $property (i32.const 500) (i32.const 14) (i32.const 600) \
        (i32.const 604)) (then (drop (call $reply (i32.const 403) (i32.const 0) (i32.const 0) \
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1))))) (i32.const 0)";
    let wasm = module(request_headers, extra);
    let mut known = fixture("known source", Vec::new(), 200);
    known.properties = vec![meshplug_preflight::Property {
        path: vec!["source".into(), "address".into()],
        value: "198.18.0.7:4000".into(),
    }];
    let unknown = fixture("unknown source", Vec::new(), 403);
    preflight()
        .run("props", &wasm, b"{}", &[known, unknown], None)
        .expect("as set");
}

/// Holds each request on a timer: sets a 10 ms tick and pauses; each tick checks the clock and,
/// once 50 ms have passed (when `resume`), makes the request's context current and resumes it.
fn delayer(resume: bool) -> Vec<u8> {
    let resume_call = match resume {
        true => {
            "(drop (call $effective (global.get $ctx))) (drop (call $continue (i32.const 0))) \
                 (drop (call $period (i32.const 0)))"
        }
        false => "(nop)",
    };
    let extra = format!(
        r#"
      (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
      (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
      (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
      (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
      (global $start (mut i64) (i64.const 0))
      (global $ctx (mut i32) (i32.const 0))
      (func $clock (result i64) (drop (call $now (i32.const 700))) (i64.load (i32.const 700)))
      (func (export "proxy_on_tick") (param i32)
        (if (i64.ge_u (i64.sub (call $clock) (global.get $start)) (i64.const 50000000))
          (then {resume_call})))
    "#
    );
    let request_headers = "(global.set $ctx (local.get 0)) (global.set $start (call $clock)) \
        (drop (call $period (i32.const 10))) (i32.const 1)";
    module(request_headers, &extra)
}

#[test]
fn a_request_held_on_a_timer_waits_for_it_by_the_sandbox_clock_alone() {
    preflight()
        .run(
            "delay",
            &delayer(true),
            b"{}",
            &[fixture("held", Vec::new(), 200)],
            None,
        )
        .expect("the timer resumes the request");
    let refused = preflight()
        .run(
            "stuck",
            &delayer(false),
            b"{}",
            &[fixture("held", Vec::new(), 200)],
            None,
        )
        .expect_err("never resumed");
    assert!(
        refused
            .to_string()
            .contains("paused the request without answering it"),
        "{refused}"
    );
}
