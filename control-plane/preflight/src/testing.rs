//! Test support: WAT text of a minimal proxy-wasm HTTP filter whose behaviour the caller
//! writes, so tests can build modules that do exactly one wrong thing. Compile it with the
//! `wat` crate.

/// A minimal proxy-wasm filter in WAT. `vm_start`, `configure` and `request_headers` are
/// function bodies returning an i32; `extra` adds module fields (imports or data) ahead of the
/// definitions. It imports `proxy_log` as `$log` and `proxy_send_local_response` as `$reply`,
/// exports a bump allocator, and has the text "refusing this configuration" at offset 16.
pub fn proxy_wasm_wat(
    vm_start: &str,
    configure: &str,
    request_headers: &str,
    extra: &str,
) -> String {
    format!(
        r#"(module
          (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
          (import "env" "proxy_send_local_response"
            (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
          {extra}
          (memory (export "memory") 2)
          (global $next (mut i32) (i32.const 4096))
          (data (i32.const 16) "refusing this configuration")
          (func (export "proxy_abi_version_0_2_1"))
          (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
            (local $at i32)
            (local.set $at (global.get $next))
            (global.set $next (i32.add (global.get $next) (local.get $size)))
            (local.get $at))
          (func (export "proxy_on_context_create") (param i32 i32))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) {vm_start})
          (func (export "proxy_on_configure") (param i32 i32) (result i32) {configure})
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) {request_headers}))"#
    )
}
