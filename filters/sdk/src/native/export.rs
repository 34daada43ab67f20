//! The macro that exports the hooks Envoy 1.40 looks up, generic over the filter.

/// Exports the Envoy 1.40 dynamic-module hooks for `$filter`. Used by [`crate::export_filter!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_native {
    ($filter:ty) => {
        const _: () = {
            use ::std::ffi::{c_char, c_void};
            use $crate::native::abi::{EnvoyBuffer, EnvoyPtr};
            use $crate::native::{Phase, on_phase};

            /// The Envoy release this module was built for; meshplug reads it before a push.
            #[allow(non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static meshplug_envoy_version: [u8; 16] = $crate::native::version_bytes();

            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
                $crate::native::program_init()
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
                envoy: EnvoyPtr,
                name: EnvoyBuffer,
                config: EnvoyBuffer,
            ) -> *const c_void {
                unsafe { $crate::native::config_new::<$filter>(envoy, name, config) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
                config: *const c_void,
            ) {
                unsafe { $crate::native::config_destroy::<$filter>(config) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
                config: *const c_void,
                envoy: EnvoyPtr,
            ) -> *const c_void {
                unsafe { $crate::native::filter_new::<$filter>(config, envoy) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(
                filter: *const c_void,
            ) {
                unsafe { $crate::native::filter_destroy::<$filter>(filter) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
                envoy: EnvoyPtr,
                filter: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::RequestHeaders, end_of_stream) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
                envoy: EnvoyPtr,
                filter: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::RequestBody, end_of_stream) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
                envoy: EnvoyPtr,
                filter: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::ResponseHeaders, end_of_stream) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
                envoy: EnvoyPtr,
                filter: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::ResponseBody, end_of_stream) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
                envoy: EnvoyPtr,
                filter: *const c_void,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::RequestTrailers, true) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
                envoy: EnvoyPtr,
                filter: *const c_void,
            ) -> u32 {
                unsafe { on_phase::<$filter>(envoy, filter, Phase::ResponseTrailers, true) }
            }
            #[unsafe(no_mangle)]
            #[allow(clippy::too_many_arguments)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
                envoy: EnvoyPtr,
                filter: *const c_void,
                callout_id: u64,
                result: u32,
                headers: *const $crate::native::abi::EnvoyHttpHeader,
                headers_size: usize,
                chunks: *const EnvoyBuffer,
                chunks_size: usize,
            ) {
                unsafe {
                    $crate::native::callout_done::<$filter>(
                        envoy,
                        filter,
                        callout_id,
                        result,
                        headers,
                        headers_size,
                        chunks,
                        chunks_size,
                    )
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
                envoy: EnvoyPtr,
                filter: *const c_void,
                stream_id: u64,
                headers: *const $crate::native::abi::EnvoyHttpHeader,
                headers_size: usize,
                _end_stream: bool,
            ) {
                unsafe {
                    let headers = $crate::native::host::owned_headers(headers, headers_size);
                    let event = $crate::native::StreamEvent::Headers(headers);
                    $crate::native::stream_event::<$filter>(envoy, filter, stream_id, event)
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
                envoy: EnvoyPtr,
                filter: *const c_void,
                stream_id: u64,
                data: *const EnvoyBuffer,
                data_count: usize,
                _end_stream: bool,
            ) {
                unsafe {
                    let bytes = $crate::native::host::owned_chunks(data, data_count);
                    let event = $crate::native::StreamEvent::Data(bytes);
                    $crate::native::stream_event::<$filter>(envoy, filter, stream_id, event)
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
                envoy: EnvoyPtr,
                filter: *const c_void,
                stream_id: u64,
                trailers: *const $crate::native::abi::EnvoyHttpHeader,
                trailers_size: usize,
            ) {
                unsafe {
                    let trailers = $crate::native::host::owned_headers(trailers, trailers_size);
                    let event = $crate::native::StreamEvent::Trailers(trailers);
                    $crate::native::stream_event::<$filter>(envoy, filter, stream_id, event)
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
                envoy: EnvoyPtr,
                filter: *const c_void,
                stream_id: u64,
            ) {
                unsafe {
                    let event = $crate::native::StreamEvent::Complete;
                    $crate::native::stream_event::<$filter>(envoy, filter, stream_id, event)
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
                envoy: EnvoyPtr,
                filter: *const c_void,
                stream_id: u64,
                reason: u32,
            ) {
                unsafe {
                    let event = $crate::native::StreamEvent::Reset(reason);
                    $crate::native::stream_event::<$filter>(envoy, filter, stream_id, event)
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
                envoy: EnvoyPtr,
                filter: *const c_void,
                event_id: u64,
            ) {
                unsafe { $crate::native::scheduled::<$filter>(envoy, filter, event_id) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
                envoy: EnvoyPtr,
                filter: *const c_void,
            ) {
                unsafe { $crate::native::stream_complete::<$filter>(envoy, filter) }
            }
            $crate::__export_native_unused_hooks!();
        };
    };
}
