//! The body a `.so` filter holds: what Envoy buffered for it (the chunks it stopped on) plus
//! the chunk of the current event, unless that chunk is the buffer itself (an earlier filter
//! buffered the body and passed it on whole).

use super::abi::{Callbacks, EnvoyBuffer, EnvoyPtr, ModuleBuffer, body_type};
use crate::Error;
use crate::host::Body;

/// The body types to read, in order: buffered, then received.
fn parts(callbacks: &Callbacks, filter_envoy: EnvoyPtr, which: Body) -> Vec<u32> {
    let (buffered, received, same) = match which {
        Body::Request => (
            body_type::BUFFERED_REQUEST_BODY,
            body_type::RECEIVED_REQUEST_BODY,
            callbacks.received_buffered_request_body,
        ),
        Body::Response => (
            body_type::BUFFERED_RESPONSE_BODY,
            body_type::RECEIVED_RESPONSE_BODY,
            callbacks.received_buffered_response_body,
        ),
    };
    // SAFETY: filter_envoy is the current hook's.
    match unsafe { same(filter_envoy) } {
        true => vec![received],
        false => vec![buffered, received],
    }
}

fn chunks(callbacks: &Callbacks, filter_envoy: EnvoyPtr, kind: u32) -> Vec<EnvoyBuffer> {
    // SAFETY: filter_envoy is the current hook's.
    let count = unsafe { (callbacks.get_body_chunks_size)(filter_envoy, kind) };
    if count == 0 {
        return Vec::new();
    }
    let mut chunks = vec![EnvoyBuffer::EMPTY; count];
    // SAFETY: `chunks` has room for the `count` buffers Envoy said it has.
    let ok = unsafe { (callbacks.get_body_chunks)(filter_envoy, kind, chunks.as_mut_ptr()) };
    if ok { chunks } else { Vec::new() }
}

/// A copy of the body the filter holds.
pub fn read(callbacks: &Callbacks, filter_envoy: EnvoyPtr, which: Body) -> Vec<u8> {
    let mut body = Vec::new();
    for kind in parts(callbacks, filter_envoy, which) {
        for chunk in chunks(callbacks, filter_envoy, kind) {
            // SAFETY: Envoy's chunk, valid for this hook; copied now.
            body.extend_from_slice(unsafe { chunk.bytes() });
        }
    }
    body
}

/// Replaces the body the filter holds with `bytes`: drains every part, then appends to the
/// current chunk (Envoy adds it to the buffered part when the filter continues).
pub fn replace(
    callbacks: &Callbacks,
    filter_envoy: EnvoyPtr,
    which: Body,
    bytes: &[u8],
) -> Result<(), Error> {
    let kinds = parts(callbacks, filter_envoy, which);
    for &kind in &kinds {
        let size: usize = chunks(callbacks, filter_envoy, kind)
            .iter()
            .map(|c| c.length)
            .sum();
        // SAFETY: filter_envoy is the current hook's. A part Envoy does not have is no error.
        let _ = unsafe { (callbacks.drain_body)(filter_envoy, kind, size) };
    }
    let received = kinds
        .last()
        .copied()
        .unwrap_or(body_type::RECEIVED_REQUEST_BODY);
    // SAFETY: filter_envoy is the current hook's; `bytes` is ours for the call.
    let ok = unsafe { (callbacks.append_body)(filter_envoy, received, ModuleBuffer::of(bytes)) };
    match ok {
        true => Ok(()),
        false => Err(Error::host(
            "set_body",
            "no body in this callback (call it from a body callback)",
        )),
    }
}
