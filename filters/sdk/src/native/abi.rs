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

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    /// Request headers.
    pub const REQUEST_HEADER: u32 = 0;
    /// Response headers.
    pub const RESPONSE_HEADER: u32 = 2;
}

/// `envoy_dynamic_module_type_http_body_type`.
pub mod body_type {
    /// The request body chunk of the current event.
    pub const RECEIVED_REQUEST_BODY: u32 = 0;
    /// The response body chunk of the current event.
    pub const RECEIVED_RESPONSE_BODY: u32 = 2;
}

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
    })
}
