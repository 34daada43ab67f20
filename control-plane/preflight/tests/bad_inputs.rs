//! The bad-input table: every row is refused, and the error names the cause. Modules are
//! written in WAT so each one does exactly the wrong thing its row names.

use meshplug_preflight::{Fixture, Limits, Preflight, Rejection};

fn module(vm_start: &str, configure: &str, request_headers: &str, extra: &str) -> Vec<u8> {
    let text =
        meshplug_preflight::testing::proxy_wasm_wat(vm_start, configure, request_headers, extra);
    wat::parse_str(&text).expect("valid WAT")
}

fn good() -> Vec<u8> {
    module("(i32.const 1)", "(i32.const 1)", "(i32.const 0)", "")
}

fn fixture(status: u16) -> Fixture {
    let mut fixture = Fixture::named(&format!("expects {status}"));
    fixture.expect.status = Some(status);
    fixture
}

/// One row of the table: name, module bytes, configuration, fixtures, whether the schema
/// applies, and text the refusal must contain.
type Row<'a> = (&'a str, Vec<u8>, &'a [u8], Vec<Fixture>, bool, &'a str);

fn preflight(max_module_bytes: usize) -> Preflight {
    Preflight::new(Limits {
        max_module_bytes,
        fuel_per_call: 5_000_000,
        max_memory_bytes: 16 * 1024 * 1024,
    })
    .expect("engine")
}

#[test]
fn every_bad_input_is_refused_naming_its_cause() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"api_keys": {"type": "array", "items": {"type": "string"}}},
        "required": ["api_keys"]
    });
    let good = good();
    let truncated = good[..good.len() / 2].to_vec();
    let configure_refuses = module(
        "(i32.const 1)",
        "(drop (call $log (i32.const 4) (i32.const 16) (i32.const 27))) (i32.const 0)",
        "(i32.const 0)",
        "",
    );
    let rows: Vec<Row<'_>> = vec![
        ("empty file", vec![], b"{}", vec![], false, "empty file"),
        ("truncated Wasm", truncated, b"{}", vec![], false, "not a valid Wasm module"),
        ("non-Wasm bytes", b"\x7fELF\x02\x01\x01 not wasm".to_vec(), b"{}", vec![], false, "not a valid Wasm module"),
        ("no proxy-wasm exports", wat::parse_str(r#"(module (func (export "main")))"#).expect("wat"), b"{}", vec![], false, "exports no proxy_abi_version"),
        ("unsupported ABI", wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_3_0")))"#).expect("wat"), b"{}", vec![], false, "unsupported proxy-wasm ABI version 0_3_0"),
        ("import Envoy lacks", module("(i32.const 1)", "(i32.const 1)", "(i32.const 0)", r#"(import "env" "proxy_launch_rockets" (func))"#), b"{}", vec![], false, "imports env.proxy_launch_rockets, which Envoy does not provide"),
        ("on_vm_start false", module("(i32.const 0)", "(i32.const 1)", "(i32.const 0)", ""), b"{}", vec![], false, "on_vm_start returned false"),
        ("on_configure false", configure_refuses, b"{}", vec![], false, "on_configure returned false: the filter refused its configuration; filter log: [error] refusing this configuration"),
        ("config fails schema", good.clone(), br#"{"api_keys": "k1"}"#, vec![], true, "configuration invalid at /api_keys"),
        ("loop in on_configure", module("(i32.const 1)", "(loop $l (br $l)) (i32.const 1)", "(i32.const 0)", ""), b"{}", vec![], false, "proxy_on_configure did not finish within 5000000 fuel units"),
        ("loop in request path", module("(i32.const 1)", "(i32.const 1)", "(loop $l (br $l)) (i32.const 0)", ""), b"{}", vec![fixture(200)], false, "proxy_on_request_headers did not finish within"),
        ("panic on a request", module("(i32.const 1)", "(i32.const 1)", "unreachable", ""), b"{}", vec![fixture(200)], false, "proxy_on_request_headers trapped"),
        ("fixture mismatch", good.clone(), b"{}", vec![fixture(403)], false, "expected status 403, got 200"),
        ("over-large artifact", good.clone(), b"{}", vec![], false, "over the limit of 64 bytes"),
    ];
    for (row, bytes, config, fixtures, with_schema, needle) in rows {
        let limit = if row == "over-large artifact" {
            64
        } else {
            1 << 20
        };
        let schema = with_schema.then_some(&schema);
        let err = preflight(limit)
            .run("test", &bytes, config, &fixtures, schema)
            .expect_err(row);
        assert!(
            err.to_string().contains(needle),
            "{row}: {err}\n  should contain: {needle}"
        );
    }
}

#[test]
fn a_good_module_passes_its_fixtures() {
    let report = preflight(1 << 20)
        .run("test", &good(), b"{}", &[fixture(200)], None)
        .expect("passes");
    assert_eq!(report.abi_version, "0_2_1");
    assert_eq!(report.fixtures_passed, 1);
}

#[test]
fn a_local_reply_is_seen_by_fixtures() {
    // Answers 418 with body "tea" (bytes at offset 16) and no headers.
    let teapot = module(
        "(i32.const 1)",
        "(i32.const 1)",
        "(drop (call $reply (i32.const 418) (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const -1))) (i32.const 1)",
        r#"(data (i32.const 64) "tea")"#,
    );
    let mut expect_teapot = fixture(418);
    expect_teapot.expect.local_reply = Some(true);
    expect_teapot.expect.body_contains = Some("tea".into());
    preflight(1 << 20)
        .run("test", &teapot, b"{}", &[expect_teapot], None)
        .expect("local reply observed");
    let err = preflight(1 << 20)
        .run("test", &teapot, b"{}", &[fixture(200)], None)
        .expect_err("mismatch");
    assert!(matches!(err, Rejection::FixtureMismatch { .. }), "{err}");
}

#[test]
fn the_vm_starts_with_its_configuration_as_envoy_would_start_it() {
    // on_vm_start fails unless it is handed a VM configuration (its second parameter is
    // the configuration's size).
    let needs_vm_config = module(
        "(i32.ne (local.get 1) (i32.const 0))",
        "(i32.const 1)",
        "(i32.const 0)",
        "",
    );
    let preflight = preflight(1 << 20);
    let without = preflight.run("test", &needs_vm_config, b"{}", &[], None);
    assert!(
        matches!(without, Err(Rejection::VmStartFailed { .. })),
        "{without:?}"
    );
    let vm = meshplug_preflight::VmInputs {
        configuration: "shared: true".into(),
        root_id: "second".into(),
    };
    preflight
        .run_in(&vm, "test", &needs_vm_config, b"{}", &[], None)
        .expect("started with its configuration");
}
