//! Envoy's buffers and header arrays, read and copied before the hook returns.

use std::ffi::c_char;

use super::abi::{EnvoyBuffer, EnvoyHttpHeader};

/// Envoy's bytes as text, if UTF-8.
///
/// # Safety
/// As for [`EnvoyBuffer::bytes`].
pub(super) unsafe fn text(ptr: *const c_char, length: usize) -> Option<&'static str> {
    // SAFETY: per the caller; the borrow is used before the hook returns.
    let bytes = unsafe { EnvoyBuffer { ptr, length }.bytes() };
    std::str::from_utf8(bytes).ok()
}

/// The bytes of Envoy's chunk array, copied.
///
/// # Safety
/// `chunks` must be null or point to `count` buffers valid for the current hook.
pub unsafe fn owned_chunks(chunks: *const EnvoyBuffer, count: usize) -> Vec<u8> {
    if chunks.is_null() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    // SAFETY: per the contract.
    for chunk in unsafe { std::slice::from_raw_parts(chunks, count) } {
        // SAFETY: Envoy's chunk for this hook.
        bytes.extend_from_slice(unsafe { chunk.bytes() });
    }
    bytes
}

/// Owned pairs from Envoy's header array.
///
/// # Safety
/// `headers` must be null or point to `count` headers valid for the current hook.
pub unsafe fn owned_headers(
    headers: *const EnvoyHttpHeader,
    count: usize,
) -> Vec<(String, String)> {
    if headers.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    let headers = unsafe { std::slice::from_raw_parts(headers, count) };
    headers
        .iter()
        .filter_map(|h| {
            // SAFETY: Envoy's buffers for this hook.
            let (key, value) = unsafe {
                (
                    text(h.key_ptr, h.key_length)?,
                    text(h.value_ptr, h.value_length)?,
                )
            };
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}
