//! The callbacks that are not one of Envoy's stream events: a callout's answer, a gRPC call's
//! (gathered from a streaming callout's events), a timer. Each runs the filter, then resumes
//! the direction it stopped, answers locally, or keeps waiting, as the filter says.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::abi::{self, CALLOUT_SUCCESS, EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr};
use super::host::{NativeHost, owned_chunks, owned_headers};
use super::{NativeFilter, answer_panic};
use crate::filter::{Action, HttpFilter};
use crate::host::{CallId, CallResponse, TimerId};

/// Runs a callback that is not one of Envoy's stream events (a callout answer, a timer),
/// then resumes the direction the filter stopped, answers locally, or keeps waiting, as the
/// filter says.
///
/// # Safety
/// As for [`super::on_phase`].
unsafe fn follow_up<F: HttpFilter>(
    filter_envoy: EnvoyPtr,
    filter: *const c_void,
    what: &str,
    run: impl FnOnce(&mut F, &mut NativeHost<'_>) -> Action,
) {
    let (Some(callbacks), false) = (abi::callbacks(), filter.is_null()) else {
        return;
    };
    // SAFETY: per the contract.
    let state = unsafe { &mut *(filter as *mut NativeFilter<F>) };
    if state.poisoned {
        return;
    }
    let mut host = NativeHost {
        callbacks,
        filter_envoy,
        outstanding: Some(&mut state.outstanding),
    };
    let filter = &mut state.filter;
    let outcome = catch_unwind(AssertUnwindSafe(|| run(filter, &mut host)));
    let resume = match state.response_started {
        true => callbacks.continue_encoding,
        false => callbacks.continue_decoding,
    };
    match outcome {
        // SAFETY: filter_envoy is this hook's.
        Ok(Action::Continue) => unsafe { resume(filter_envoy) },
        Ok(Action::Stop) => {}
        Ok(Action::Reply(reply)) => host.send(&reply),
        Err(payload) => {
            let who = (&mut state.poisoned, state.panics, &*state.plugin);
            answer_panic(callbacks, &mut host, who, what, payload.as_ref());
        }
    }
}

/// `envoy_dynamic_module_on_http_filter_http_callout_done`: hands the answer to the filter.
///
/// # Safety
/// As for [`super::on_phase`]; `headers` and `chunks` null or Envoy's arrays of the given sizes, valid
/// for this hook.
#[allow(clippy::too_many_arguments)]
pub unsafe fn callout_done<F: HttpFilter>(
    filter_envoy: EnvoyPtr,
    filter: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    // SAFETY: per the contract.
    let response = unsafe { call_response(result, headers, headers_size, chunks, chunks_size) };
    let id = CallId(callout_id);
    // SAFETY: per the contract.
    unsafe {
        follow_up::<F>(filter_envoy, filter, "a callout answer", |filter, host| {
            filter.on_http_call_response(host, id, response)
        });
    }
}

/// One event of a streaming callout (a gRPC call): headers, data, trailers, its end or reset.
#[derive(Debug)]
pub enum StreamEvent {
    /// Headers.
    Headers(Vec<(String, String)>),
    /// Data.
    Data(Vec<u8>),
    /// Trailers.
    Trailers(Vec<(String, String)>),
    /// The end.
    Complete,
    /// A reset, with Envoy's reason.
    Reset(u32),
}

/// The `envoy_dynamic_module_on_http_filter_http_stream_*` hooks: gathers a gRPC call's answer
/// and hands it to the filter when the call ends.
///
/// # Safety
/// As for [`super::on_phase`].
pub unsafe fn stream_event<F: HttpFilter>(
    filter_envoy: EnvoyPtr,
    filter: *const c_void,
    stream_id: u64,
    event: StreamEvent,
) {
    if filter.is_null() {
        return;
    }
    // SAFETY: per the contract.
    let state = unsafe { &mut *(filter as *mut NativeFilter<F>) };
    let calls = &mut state.outstanding.grpc;
    let done = match event {
        StreamEvent::Headers(headers) => {
            calls.headers(stream_id, headers);
            None
        }
        StreamEvent::Data(bytes) => {
            calls.data(stream_id, &bytes);
            None
        }
        StreamEvent::Trailers(trailers) => {
            calls.trailers(stream_id, trailers);
            None
        }
        StreamEvent::Complete => calls.finish(stream_id),
        StreamEvent::Reset(reason) => calls.reset(stream_id, reason),
    };
    let Some(response) = done else {
        return;
    };
    let id = CallId(stream_id);
    // SAFETY: per the contract.
    unsafe {
        follow_up::<F>(filter_envoy, filter, "a gRPC answer", |filter, host| {
            filter.on_grpc_call_response(host, id, response)
        });
    }
}

/// `envoy_dynamic_module_on_http_filter_scheduled`: a timer of the stream fired.
///
/// # Safety
/// As for [`super::on_phase`].
pub unsafe fn scheduled<F: HttpFilter>(filter_envoy: EnvoyPtr, filter: *const c_void, event: u64) {
    // SAFETY: per the contract.
    unsafe {
        follow_up::<F>(filter_envoy, filter, "a timer", |filter, host| {
            filter.on_timer(host, TimerId(event))
        });
    }
}

/// The callout's answer as the SDK hands it to filters.
///
/// # Safety
/// As for [`callout_done`].
unsafe fn call_response(
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) -> CallResponse {
    if result != CALLOUT_SUCCESS {
        let reason = match result {
            2 => "the answer exceeded the buffer limit",
            _ => "the callout was reset (timeout, connection failure or no healthy host)",
        };
        return CallResponse::failed(reason);
    }
    // SAFETY: per the contract.
    let (headers, body) = unsafe {
        (
            owned_headers(headers, headers_size),
            owned_chunks(chunks, chunks_size),
        )
    };
    CallResponse::answered(headers, body)
}
