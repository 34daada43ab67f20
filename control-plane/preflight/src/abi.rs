//! What Envoy 1.40 requires of a proxy-wasm module's exports and allows as imports.

use wasmi::{ExternType, Module};

use crate::Rejection;

/// ABI versions Envoy 1.40 loads.
const SUPPORTED_ABI: [&str; 3] = ["0_1_0", "0_2_0", "0_2_1"];

/// Exports a proxy-wasm HTTP filter needs, besides an ABI version and an allocator.
const REQUIRED_EXPORTS: [&str; 4] = [
    "memory",
    "proxy_on_context_create",
    "proxy_on_vm_start",
    "proxy_on_configure",
];

/// Host functions Envoy provides in module `env` (proxy-wasm ABI 0.1 and 0.2).
const ENVOY_ENV: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_configuration",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_get_header_map_size",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
    "emscripten_notify_memory_growth",
];

/// WASI functions Envoy provides (in `wasi_snapshot_preview1` and `wasi_unstable`).
const ENVOY_WASI: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
    "path_open",
];

/// Whether Envoy provides the import `module.name`.
pub(crate) fn envoy_provides(module: &str, name: &str) -> bool {
    match module {
        "env" => ENVOY_ENV.contains(&name),
        "wasi_snapshot_preview1" | "wasi_unstable" => ENVOY_WASI.contains(&name),
        _ => false,
    }
}

/// The name of the allocator export the host calls to hand the module bytes.
pub(crate) fn allocator_export(module: &Module) -> Option<&'static str> {
    ["proxy_on_memory_allocate", "malloc"]
        .into_iter()
        .find(|name| module.get_export(name).is_some())
}

/// Checks exports and imports; returns the ABI version found.
pub(crate) fn check_module(module: &Module) -> Result<String, Rejection> {
    let versions: Vec<String> = module
        .exports()
        .filter_map(|e| {
            e.name()
                .strip_prefix("proxy_abi_version_")
                .map(str::to_string)
        })
        .collect();
    let Some(first) = versions.first() else {
        return Err(Rejection::NotProxyWasm);
    };
    let version = versions
        .iter()
        .find(|v| SUPPORTED_ABI.contains(&v.as_str()))
        .ok_or_else(|| Rejection::UnsupportedAbi(first.clone()))?
        .clone();
    for name in REQUIRED_EXPORTS {
        if module.get_export(name).is_none() {
            return Err(Rejection::MissingExport(name.to_string()));
        }
    }
    if allocator_export(module).is_none() {
        return Err(Rejection::MissingExport(
            "proxy_on_memory_allocate (or malloc)".to_string(),
        ));
    }
    for import in module.imports() {
        let is_function = matches!(import.ty(), ExternType::Func(_));
        if !is_function || !envoy_provides(import.module(), import.name()) {
            return Err(Rejection::UnknownImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
    }
    Ok(version)
}
