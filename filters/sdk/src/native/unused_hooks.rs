//! The hooks Envoy 1.40 requires that this SDK does not use (trailers, callouts, streams,
//! scheduling, watermarks). Envoy refuses a module that lacks any of them; these answer
//! "continue" or do nothing.

/// Exports the required-but-unused hooks. Used by `__export_native!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_native_unused_hooks {
    () => {
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
            _envoy: EnvoyPtr, _filter: *const c_void,
        ) -> u32 {
            $crate::native::abi::status::CONTINUE
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
            _envoy: EnvoyPtr, _filter: *const c_void,
        ) -> u32 {
            $crate::native::abi::status::CONTINUE
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
            _envoy: EnvoyPtr, _filter: *const c_void, _callout_id: u64, _result: u32,
            _headers: *mut c_void, _headers_size: usize, _body: *mut c_void, _body_size: usize,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
            _envoy: EnvoyPtr, _filter: *const c_void, _stream_id: u64,
            _headers: *mut c_void, _headers_size: usize, _end_stream: bool,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
            _envoy: EnvoyPtr, _filter: *const c_void, _stream_id: u64,
            _data: *const c_void, _data_count: usize, _end_stream: bool,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
            _envoy: EnvoyPtr, _filter: *const c_void, _stream_id: u64,
            _trailers: *mut c_void, _trailers_size: usize,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
            _envoy: EnvoyPtr, _filter: *const c_void, _stream_id: u64,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
            _envoy: EnvoyPtr, _filter: *const c_void, _stream_id: u64, _reason: u32,
        ) {
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
            _envoy: EnvoyPtr, _filter: *const c_void, _event_id: u64,
        ) {
        }
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
