//! The hooks Envoy 1.40 requires that this SDK does not use (the downstream
//! watermarks). Envoy refuses a module that lacks any of them; these answer
//! "continue" or do nothing.

/// Exports the required-but-unused hooks. Used by `__export_native!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_native_unused_hooks {
    () => {
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
            _envoy: EnvoyPtr, _filter: *const c_void,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
            _envoy: EnvoyPtr, _filter: *const c_void,
        ) {
        }
    };
}
