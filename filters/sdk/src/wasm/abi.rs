//! The proxy-wasm host calls the SDK makes on every request, bound here rather than through the
//! `proxy-wasm` crate's wrappers: those panic (a trap: the VM is lost) on any status they do not
//! expect, e.g. a header map read outside its phase, and on a header value that is not UTF-8,
//! which any client can send. These return the status instead and leave the bytes as bytes.
//! The ABI is proxy-wasm 0.2.1, as Envoy 1.40 implements it.

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType};

/// A status other than OK, as the host returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Status(pub(super) u32);

/// `NotFound`.
const NOT_FOUND: u32 = 1;
/// `CasMismatch`.
pub(super) const CAS_MISMATCH: u32 = 8;

// The `proxy-wasm` crate declares the same imports with its `Status` enum as the return type;
// these return the raw `u32` (the same ABI), so an unknown status is a value, not undefined
// behaviour.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_value(
        map: MapType,
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: MapType, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: MapType, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: BufferType,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer: BufferType,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

fn ok(status: u32) -> Result<(), Status> {
    match status {
        0 => Ok(()),
        other => Err(Status(other)),
    }
}

/// Takes the bytes the host allocated in our memory (through `proxy_on_memory_allocate`).
///
/// # Safety
/// `data` must be null or a buffer of `size` bytes the host allocated with our allocator.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract; the allocator gave exactly `size` bytes.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Runs a host call that hands back bytes: `Ok(None)` for not found.
fn fetch(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    match call(&mut data, &mut size) {
        // SAFETY: on OK the host filled `data` and `size` with a buffer of ours.
        0 => Ok(Some(unsafe { take(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(Status(other)),
    }
}

/// The first value of header `key`, as bytes.
pub(super) fn header(map: MapType, key: &str) -> Result<Option<Vec<u8>>, Status> {
    // SAFETY: the key is ours for the call; the out-pointers are live locals.
    fetch(|data, size| unsafe {
        proxy_get_header_map_value(map, key.as_ptr(), key.len(), data, size)
    })
}

/// Every pair of a header map whose name and value are UTF-8 (others are left out).
pub(super) fn header_pairs(map: MapType) -> Result<Vec<(String, String)>, Status> {
    // SAFETY: the out-pointers are live locals.
    let bytes = fetch(|data, size| unsafe { proxy_get_header_map_pairs(map, data, size) })?;
    let pairs = bytes
        .map(|b| crate::wire::deserialize_pairs(&b))
        .unwrap_or_default();
    Ok(pairs
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?)))
        .collect())
}

/// Replaces every value of `key` with `value`.
pub(super) fn replace_header(map: MapType, key: &str, value: &str) -> Result<(), Status> {
    // SAFETY: both buffers are ours for the call.
    ok(unsafe {
        proxy_replace_header_map_value(map, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    })
}

/// Adds a value to `key`.
pub(super) fn add_header(map: MapType, key: &str, value: &str) -> Result<(), Status> {
    // SAFETY: both buffers are ours for the call.
    ok(unsafe {
        proxy_add_header_map_value(map, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    })
}

/// Removes `key`.
pub(super) fn remove_header(map: MapType, key: &str) -> Result<(), Status> {
    // SAFETY: the key is ours for the call.
    ok(unsafe { proxy_remove_header_map_value(map, key.as_ptr(), key.len()) })
}

/// `max` bytes of `buffer` from `start`.
pub(super) fn buffer(buffer: BufferType, start: usize, max: usize) -> Result<Vec<u8>, Status> {
    // SAFETY: the out-pointers are live locals.
    let bytes =
        fetch(|data, size| unsafe { proxy_get_buffer_bytes(buffer, start, max, data, size) });
    Ok(bytes?.unwrap_or_default())
}

/// Replaces `size` bytes of `buffer` from `start` with `bytes`.
pub(super) fn set_buffer(
    buffer: BufferType,
    (start, size): (usize, usize),
    bytes: &[u8],
) -> Result<(), Status> {
    // SAFETY: `bytes` is ours for the call.
    ok(unsafe { proxy_set_buffer_bytes(buffer, start, size, bytes.as_ptr(), bytes.len()) })
}

fn path_bytes(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// A property, by path.
pub(super) fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let path = path_bytes(path);
    // SAFETY: the path is ours for the call; the out-pointers are live locals.
    fetch(|data, size| unsafe { proxy_get_property(path.as_ptr(), path.len(), data, size) })
}

/// Sets a property (Envoy keeps it in filter state, under `wasm.`).
pub(super) fn set_property(path: &[&str], value: &[u8]) -> Result<(), Status> {
    let path = path_bytes(path);
    // SAFETY: both buffers are ours for the call.
    ok(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

/// Shared data under `key`, with its version.
pub(super) fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
    let mut cas = 0u32;
    // SAFETY: the key is ours for the call; the out-pointers are live locals.
    let value = fetch(|data, size| unsafe {
        proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas)
    })?;
    Ok(value.map(|value| (value, cas)))
}

/// Stores shared data; `cas` 0 writes whatever the version.
pub(super) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: both buffers are ours for the call.
    ok(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Answers the client: `status`, `headers`, `body`, and `details` for access logs.
pub(super) fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), Status> {
    let headers = crate::wire::serialize_pairs(headers);
    // SAFETY: every buffer is ours for the call.
    ok(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}
