//! Our bindings to the subset of Envoy 1.40's dynamic-module C ABI the SDK uses. Names and
//! signatures come from Envoy's public `abi.h` and were checked against the 1.40.0 binary
//! (`nm -D --defined-only envoy` for callbacks, `strings` for the hooks it looks up).
//!
//! Envoy's callbacks are not linked: they are looked up with `dlsym` when the module loads
//! ([`resolve`]), so a missing or renamed callback fails the load with a clear error instead of
//! crashing the proxy on first use, and the SDK's own tests can install a fake table.

use std::ffi::{CString, c_char, c_void};
use std::sync::OnceLock;

/// A buffer owned by Envoy (`envoy_dynamic_module_type_envoy_buffer`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyBuffer {
    /// Start; may be null.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub length: usize,
}

impl EnvoyBuffer {
    /// An empty buffer for Envoy to fill.
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// The bytes, or nothing for a null or empty buffer.
    ///
    /// # Safety
    /// `ptr` must point to `length` readable bytes that outlive `'a`, as Envoy guarantees for
    /// buffers it hands to a hook or a callback for the rest of that hook.
    pub unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.length == 0 {
            return &[];
        }
        // SAFETY: non-null and sized by Envoy; lifetime per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.length) }
    }
}

/// A buffer owned by the module (`envoy_dynamic_module_type_module_buffer`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleBuffer {
    /// Start; null means "no value".
    pub ptr: *const c_char,
    /// Length in bytes.
    pub length: usize,
}

impl ModuleBuffer {
    /// No value (e.g. "remove this header").
    pub const NULL: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// Borrows `bytes` for one call.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr().cast(),
            length: bytes.len(),
        }
    }
}

/// A header owned by the module (`envoy_dynamic_module_type_module_http_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleHttpHeader {
    /// Name start.
    pub key_ptr: *const c_char,
    /// Name length.
    pub key_length: usize,
    /// Value start.
    pub value_ptr: *const c_char,
    /// Value length.
    pub value_length: usize,
}

impl ModuleHttpHeader {
    /// Borrows `name` and `value` for one call.
    pub fn of(name: &str, value: &str) -> Self {
        Self {
            key_ptr: name.as_ptr().cast(),
            key_length: name.len(),
            value_ptr: value.as_ptr().cast(),
            value_length: value.len(),
        }
    }
}

/// A header owned by Envoy (`envoy_dynamic_module_type_envoy_http_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyHttpHeader {
    /// Name start.
    pub key_ptr: *const c_char,
    /// Name length.
    pub key_length: usize,
    /// Value start.
    pub value_ptr: *const c_char,
    /// Value length.
    pub value_length: usize,
}

impl EnvoyHttpHeader {
    /// An empty slot for Envoy to fill.
    pub const EMPTY: Self = Self {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    /// Request headers.
    pub const REQUEST_HEADER: u32 = 0;
    /// Request trailers.
    pub const REQUEST_TRAILER: u32 = 1;
    /// Response headers.
    pub const RESPONSE_HEADER: u32 = 2;
    /// Response trailers.
    pub const RESPONSE_TRAILER: u32 = 3;
}

/// `envoy_dynamic_module_type_http_body_type`.
pub mod body_type {
    /// The request body chunk of the current event.
    pub const RECEIVED_REQUEST_BODY: u32 = 0;
    /// What this filter buffered of the request body (earlier chunks it stopped on).
    pub const BUFFERED_REQUEST_BODY: u32 = 1;
    /// The response body chunk of the current event.
    pub const RECEIVED_RESPONSE_BODY: u32 = 2;
    /// What this filter buffered of the response body.
    pub const BUFFERED_RESPONSE_BODY: u32 = 3;
}

/// `envoy_dynamic_module_type_metadata_source`.
pub mod metadata_source {
    /// The stream's dynamic metadata.
    pub const DYNAMIC: u32 = 0;
    /// The route's metadata.
    pub const ROUTE: u32 = 1;
}

/// `envoy_dynamic_module_type_attribute_id` values the SDK reads.
pub mod attribute_id {
    /// `request.id`.
    pub const REQUEST_ID: u32 = 9;
    /// `request.protocol`.
    pub const REQUEST_PROTOCOL: u32 = 10;
    /// `source.address`.
    pub const SOURCE_ADDRESS: u32 = 24;
    /// `destination.address`.
    pub const DESTINATION_ADDRESS: u32 = 26;
    /// `connection.requested_server_name`.
    pub const REQUESTED_SERVER_NAME: u32 = 30;
    /// `connection.tls_version`.
    pub const TLS_VERSION: u32 = 31;
}

/// `envoy_dynamic_module_type_http_callout_init_result_Success`.
pub const CALLOUT_INIT_SUCCESS: u32 = 0;
/// Why Envoy refused to start a callout or a stream: an
/// `envoy_dynamic_module_type_http_callout_init_result` other than success, in words.
pub fn callout_refused(result: u32) -> String {
    match result {
        1 => "missing :method, :path or :authority".into(),
        2 => "no such cluster".into(),
        3 => "duplicate callout id".into(),
        // Seen with a cluster that has no host: Envoy fails the request before it starts.
        4 => "Envoy cannot create the request (does the cluster have a healthy host?)".into(),
        other => format!("Envoy refused the call (result {other})"),
    }
}

/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;

/// Hook status values shared by the headers and body hooks: `Continue`, and `StopIteration`
/// (headers) or `StopIterationAndBuffer` (body).
pub mod status {
    /// Go on.
    pub const CONTINUE: u32 = 0;
    /// Stop iteration (headers), or stop and buffer (body).
    pub const STOP: u32 = 1;
}

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// Opaque Envoy-side pointers.
pub type EnvoyPtr = *mut c_void;

type LogFn = unsafe extern "C" fn(u32, ModuleBuffer);
type GetHeaderFn =
    unsafe extern "C" fn(EnvoyPtr, u32, ModuleBuffer, *mut EnvoyBuffer, usize, *mut usize) -> bool;
pub(crate) type SetHeaderFn =
    unsafe extern "C" fn(EnvoyPtr, u32, ModuleBuffer, ModuleBuffer) -> bool;
type SendResponseFn =
    unsafe extern "C" fn(EnvoyPtr, u32, *mut ModuleHttpHeader, usize, ModuleBuffer, ModuleBuffer);
type BodyChunksSizeFn = unsafe extern "C" fn(EnvoyPtr, u32) -> usize;
type BodyChunksFn = unsafe extern "C" fn(EnvoyPtr, u32, *mut EnvoyBuffer) -> bool;
pub(crate) type DefineMetricFn =
    unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, *mut ModuleBuffer, usize, *mut usize) -> u32;
type UpdateMetricFn = unsafe extern "C" fn(EnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32;
type HeadersSizeFn = unsafe extern "C" fn(EnvoyPtr, u32) -> usize;
type HeadersFn = unsafe extern "C" fn(EnvoyPtr, u32, *mut EnvoyHttpHeader) -> bool;
type AppendBodyFn = unsafe extern "C" fn(EnvoyPtr, u32, ModuleBuffer) -> bool;
type DrainBodyFn = unsafe extern "C" fn(EnvoyPtr, u32, usize) -> bool;
type FlagFn = unsafe extern "C" fn(EnvoyPtr) -> bool;
type ContinueFn = unsafe extern "C" fn(EnvoyPtr);
type CalloutFn = unsafe extern "C" fn(
    EnvoyPtr,
    *mut u64,
    ModuleBuffer,
    *mut ModuleHttpHeader,
    usize,
    ModuleBuffer,
    u64,
) -> u32;
type AttributeFn = unsafe extern "C" fn(EnvoyPtr, u32, *mut EnvoyBuffer) -> bool;
type GetMetadataFn =
    unsafe extern "C" fn(EnvoyPtr, u32, ModuleBuffer, ModuleBuffer, *mut EnvoyBuffer) -> bool;
type SetMetadataFn = unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, ModuleBuffer, ModuleBuffer);
type SetStateFn = unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, ModuleBuffer) -> bool;
type GetStateFn = unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, *mut EnvoyBuffer) -> bool;
type StartStreamFn = unsafe extern "C" fn(
    EnvoyPtr,
    *mut u64,
    ModuleBuffer,
    *mut ModuleHttpHeader,
    usize,
    ModuleBuffer,
    bool,
    u64,
) -> u32;
type SchedulerNewFn = unsafe extern "C" fn(EnvoyPtr) -> *mut c_void;
type SchedulerCommitFn = unsafe extern "C" fn(*mut c_void, u64);
type SchedulerDeleteFn = unsafe extern "C" fn(*mut c_void);

/// The Envoy callbacks the SDK calls.
#[derive(Debug, Clone, Copy)]
pub struct Callbacks {
    /// `envoy_dynamic_module_callback_log`.
    pub log: LogFn,
    /// `envoy_dynamic_module_callback_http_get_header`.
    pub get_header: GetHeaderFn,
    /// `envoy_dynamic_module_callback_http_set_header`.
    pub set_header: SetHeaderFn,
    /// `envoy_dynamic_module_callback_http_add_header`.
    pub add_header: SetHeaderFn,
    /// `envoy_dynamic_module_callback_http_send_response`.
    pub send_response: SendResponseFn,
    /// `envoy_dynamic_module_callback_http_get_body_chunks_size`.
    pub get_body_chunks_size: BodyChunksSizeFn,
    /// `envoy_dynamic_module_callback_http_get_body_chunks`.
    pub get_body_chunks: BodyChunksFn,
    /// `envoy_dynamic_module_callback_http_filter_config_define_counter`.
    pub define_counter: DefineMetricFn,
    /// `envoy_dynamic_module_callback_http_filter_config_define_histogram`.
    pub define_histogram: DefineMetricFn,
    /// `envoy_dynamic_module_callback_http_filter_increment_counter`.
    pub increment_counter: UpdateMetricFn,
    /// `envoy_dynamic_module_callback_http_filter_record_histogram_value`.
    pub record_histogram_value: UpdateMetricFn,
    /// `envoy_dynamic_module_callback_http_get_headers_size`.
    pub get_headers_size: HeadersSizeFn,
    /// `envoy_dynamic_module_callback_http_get_headers`.
    pub get_headers: HeadersFn,
    /// `envoy_dynamic_module_callback_http_append_body`.
    pub append_body: AppendBodyFn,
    /// `envoy_dynamic_module_callback_http_drain_body`.
    pub drain_body: DrainBodyFn,
    /// `envoy_dynamic_module_callback_http_received_buffered_request_body`.
    pub received_buffered_request_body: FlagFn,
    /// `envoy_dynamic_module_callback_http_received_buffered_response_body`.
    pub received_buffered_response_body: FlagFn,
    /// `envoy_dynamic_module_callback_http_filter_http_callout`.
    pub http_callout: CalloutFn,
    /// `envoy_dynamic_module_callback_http_filter_continue_decoding`.
    pub continue_decoding: ContinueFn,
    /// `envoy_dynamic_module_callback_http_filter_continue_encoding`.
    pub continue_encoding: ContinueFn,
    /// `envoy_dynamic_module_callback_http_filter_get_attribute_string`.
    pub get_attribute_string: AttributeFn,
    /// `envoy_dynamic_module_callback_http_get_metadata_string`.
    pub get_metadata_string: GetMetadataFn,
    /// `envoy_dynamic_module_callback_http_set_dynamic_metadata_string`.
    pub set_dynamic_metadata_string: SetMetadataFn,
    /// `envoy_dynamic_module_callback_http_set_filter_state_bytes`.
    pub set_filter_state_bytes: SetStateFn,
    /// `envoy_dynamic_module_callback_http_get_filter_state_bytes`.
    pub get_filter_state_bytes: GetStateFn,
    /// `envoy_dynamic_module_callback_http_filter_start_http_stream`.
    pub start_http_stream: StartStreamFn,
    /// `envoy_dynamic_module_callback_http_filter_scheduler_new`.
    pub scheduler_new: SchedulerNewFn,
    /// `envoy_dynamic_module_callback_http_filter_scheduler_commit`.
    pub scheduler_commit: SchedulerCommitFn,
    /// `envoy_dynamic_module_callback_http_filter_scheduler_delete`.
    pub scheduler_delete: SchedulerDeleteFn,
}

static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

/// The installed callbacks; `None` before [`install`].
pub fn callbacks() -> Option<&'static Callbacks> {
    CALLBACKS.get()
}

/// Installs the callback table (once; later calls keep the first table).
pub fn install(table: Callbacks) -> &'static Callbacks {
    CALLBACKS.get_or_init(|| table)
}

/// Looks up one symbol in the process (Envoy exports its callbacks dynamically).
fn lookup(name: &str) -> Result<*mut c_void, String> {
    let c_name = CString::new(name).map_err(|_| format!("bad symbol name {name}"))?;
    // SAFETY: dlsym with RTLD_DEFAULT and a valid C string only reads the symbol tables.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c_name.as_ptr()) };
    if address.is_null() {
        Err(format!("Envoy does not export {name}"))
    } else {
        Ok(address)
    }
}

macro_rules! resolve_table {
    ($($field:ident: $fn_type:ty => $symbol:literal),* $(,)?) => {
        Callbacks {
            $(
                // SAFETY: the symbol is Envoy's C function with the signature `abi.h` gives it,
                // which is the field's type.
                $field: unsafe {
                    std::mem::transmute::<*mut c_void, $fn_type>(lookup($symbol)?)
                },
            )*
        }
    };
}

/// Resolves every callback the SDK needs from the running Envoy.
pub fn resolve() -> Result<Callbacks, String> {
    Ok(resolve_table! {
        log: LogFn => "envoy_dynamic_module_callback_log",
        get_header: GetHeaderFn => "envoy_dynamic_module_callback_http_get_header",
        set_header: SetHeaderFn => "envoy_dynamic_module_callback_http_set_header",
        add_header: SetHeaderFn => "envoy_dynamic_module_callback_http_add_header",
        send_response: SendResponseFn => "envoy_dynamic_module_callback_http_send_response",
        get_body_chunks_size: BodyChunksSizeFn => "envoy_dynamic_module_callback_http_get_body_chunks_size",
        get_body_chunks: BodyChunksFn => "envoy_dynamic_module_callback_http_get_body_chunks",
        define_counter: DefineMetricFn => "envoy_dynamic_module_callback_http_filter_config_define_counter",
        define_histogram: DefineMetricFn => "envoy_dynamic_module_callback_http_filter_config_define_histogram",
        increment_counter: UpdateMetricFn => "envoy_dynamic_module_callback_http_filter_increment_counter",
        record_histogram_value: UpdateMetricFn => "envoy_dynamic_module_callback_http_filter_record_histogram_value",
        get_headers_size: HeadersSizeFn => "envoy_dynamic_module_callback_http_get_headers_size",
        get_headers: HeadersFn => "envoy_dynamic_module_callback_http_get_headers",
        append_body: AppendBodyFn => "envoy_dynamic_module_callback_http_append_body",
        drain_body: DrainBodyFn => "envoy_dynamic_module_callback_http_drain_body",
        received_buffered_request_body: FlagFn => "envoy_dynamic_module_callback_http_received_buffered_request_body",
        received_buffered_response_body: FlagFn => "envoy_dynamic_module_callback_http_received_buffered_response_body",
        http_callout: CalloutFn => "envoy_dynamic_module_callback_http_filter_http_callout",
        continue_decoding: ContinueFn => "envoy_dynamic_module_callback_http_filter_continue_decoding",
        continue_encoding: ContinueFn => "envoy_dynamic_module_callback_http_filter_continue_encoding",
        get_attribute_string: AttributeFn => "envoy_dynamic_module_callback_http_filter_get_attribute_string",
        get_metadata_string: GetMetadataFn => "envoy_dynamic_module_callback_http_get_metadata_string",
        set_dynamic_metadata_string: SetMetadataFn => "envoy_dynamic_module_callback_http_set_dynamic_metadata_string",
        set_filter_state_bytes: SetStateFn => "envoy_dynamic_module_callback_http_set_filter_state_bytes",
        get_filter_state_bytes: GetStateFn => "envoy_dynamic_module_callback_http_get_filter_state_bytes",
        start_http_stream: StartStreamFn => "envoy_dynamic_module_callback_http_filter_start_http_stream",
        scheduler_new: SchedulerNewFn => "envoy_dynamic_module_callback_http_filter_scheduler_new",
        scheduler_commit: SchedulerCommitFn => "envoy_dynamic_module_callback_http_filter_scheduler_commit",
        scheduler_delete: SchedulerDeleteFn => "envoy_dynamic_module_callback_http_filter_scheduler_delete",
    })
}
