//! The Envoy dynamic-module backend: the hooks Envoy 1.40 calls, generic over the filter, and
//! the macro that exports them under the names Envoy looks up.
//!
//! Every hook catches panics. A panic while building a configuration refuses the configuration;
//! a panic in a request callback answers 500, counts `meshplug_panics_<plugin>`, and leaves the
//! filter out of the rest of that request. A null pointer from Envoy is never dereferenced.

pub mod abi;
mod body;
mod buffers;
mod export;
mod follow;
mod grpc;
pub mod host;
mod shared;
mod timers;
mod unused_hooks;

use std::any::Any;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use abi::{Callbacks, EnvoyBuffer, EnvoyPtr, status};
use host::{NativeHost, NativeMetrics, log};

pub use follow::{StreamEvent, callout_done, scheduled, stream_event};

use crate::filter::{Action, HttpFilter, Loaded, LocalReply, load};
use crate::host::{Host, LogLevel};
use host::Outstanding;

/// The ABI version string, NUL-terminated, for `on_program_init`.
static ABI_VERSION_C: &[u8] = b"v0.2.0\0";

/// An in-module filter configuration (`http_filter_config_module_ptr`).
#[derive(Debug)]
pub struct NativeConfig<F: HttpFilter> {
    loaded: Loaded<F::Config>,
    plugin: Arc<str>,
}

/// An in-module filter for one stream (`http_filter_module_ptr`).
#[derive(Debug)]
pub struct NativeFilter<F: HttpFilter> {
    filter: F,
    heartbeat: Option<crate::Counter>,
    panics: Option<crate::Counter>,
    /// For panic messages: shared with the configuration, so a new stream copies no string.
    plugin: Arc<str>,
    /// Set after a panic: the filter is skipped for the rest of the stream.
    poisoned: bool,
    /// Whether the request headers reached this filter. A local reply from an earlier filter
    /// still passes Envoy's encoder chain; like proxy-wasm, the SDK keeps the response from a
    /// filter that never saw the request.
    saw_request: bool,
    /// Whether the response headers reached this filter: a callout answer then resumes the
    /// response (encoding) rather than the request (decoding).
    response_started: bool,
    /// The stream's timers and gRPC calls.
    outstanding: Outstanding,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// `envoy_dynamic_module_on_program_init`: resolves Envoy's callbacks; null refuses the module.
pub fn program_init() -> *const c_char {
    match abi::resolve() {
        Ok(table) => {
            let callbacks = abi::install(table);
            log(
                callbacks,
                LogLevel::Info,
                "meshplug-sdk: module loaded, ABI v0.2.0",
            );
            ABI_VERSION_C.as_ptr().cast()
        }
        Err(missing) => {
            eprintln!("meshplug-sdk: refusing to load: {missing}");
            std::ptr::null()
        }
    }
}

/// `envoy_dynamic_module_on_http_filter_config_new`.
///
/// # Safety
/// `name` and `config` must be buffers Envoy handed to this hook.
pub unsafe fn config_new<F: HttpFilter>(
    config_envoy: EnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let Some(callbacks) = abi::callbacks() else {
        return std::ptr::null();
    };
    // SAFETY: Envoy's buffers, valid for this hook, read now.
    let (name, config) = unsafe { (name.bytes(), config.bytes()) };
    let plugin = String::from_utf8_lossy(name).into_owned();
    let built = catch_unwind(AssertUnwindSafe(|| {
        let mut metrics = NativeMetrics {
            callbacks,
            config_envoy,
        };
        load::<F::Config>(&plugin, config, &mut metrics)
    }));
    match built {
        Ok(Ok(loaded)) => {
            log(
                callbacks,
                LogLevel::Info,
                &format!("{plugin}: configuration accepted"),
            );
            let plugin = Arc::from(plugin);
            Box::into_raw(Box::new(NativeConfig::<F> { loaded, plugin })) as *const c_void
        }
        Ok(Err(error)) => {
            log(callbacks, LogLevel::Error, &format!("{plugin}: {error}"));
            std::ptr::null()
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            log(
                callbacks,
                LogLevel::Error,
                &format!("{plugin}: configuration panicked: {message}"),
            );
            std::ptr::null()
        }
    }
}

/// `envoy_dynamic_module_on_http_filter_config_destroy`.
///
/// # Safety
/// `config` must be null or a pointer [`config_new`] returned for the same `F`, not yet destroyed.
pub unsafe fn config_destroy<F: HttpFilter>(config: *const c_void) {
    if config.is_null() {
        return;
    }
    // SAFETY: per the contract, ours from Box::into_raw.
    let boxed = unsafe { Box::from_raw(config as *mut NativeConfig<F>) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// `envoy_dynamic_module_on_http_filter_new`.
///
/// # Safety
/// `config` must be null or a live pointer from [`config_new`] for the same `F`.
pub unsafe fn filter_new<F: HttpFilter>(
    config: *const c_void,
    _filter_envoy: EnvoyPtr,
) -> *const c_void {
    if config.is_null() {
        return std::ptr::null();
    }
    // SAFETY: per the contract; Envoy keeps the config alive while its filters live.
    let config = unsafe { &*(config as *const NativeConfig<F>) };
    let created = catch_unwind(AssertUnwindSafe(|| F::new(&config.loaded.config)));
    match created {
        Ok(filter) => Box::into_raw(Box::new(NativeFilter {
            filter,
            heartbeat: config.loaded.heartbeat,
            panics: config.loaded.panics,
            plugin: Arc::clone(&config.plugin),
            poisoned: false,
            saw_request: false,
            response_started: false,
            outstanding: Outstanding::default(),
        })) as *const c_void,
        Err(_) => std::ptr::null(),
    }
}

/// `envoy_dynamic_module_on_http_filter_destroy`.
///
/// # Safety
/// `filter` must be null or a pointer [`filter_new`] returned for the same `F`, not yet destroyed.
pub unsafe fn filter_destroy<F: HttpFilter>(filter: *const c_void) {
    if filter.is_null() {
        return;
    }
    // SAFETY: per the contract, ours from Box::into_raw.
    let mut boxed = unsafe { Box::from_raw(filter as *mut NativeFilter<F>) };
    if let Some(callbacks) = abi::callbacks() {
        boxed.outstanding.timers.close(callbacks);
    }
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// Which callback a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Request headers.
    RequestHeaders,
    /// A request body chunk.
    RequestBody,
    /// Response headers.
    ResponseHeaders,
    /// A response body chunk.
    ResponseBody,
    /// Request trailers.
    RequestTrailers,
    /// Response trailers.
    ResponseTrailers,
}

/// Runs one request callback of the filter behind `filter`, catching any panic.
///
/// # Safety
/// `filter_envoy` must be the pointer Envoy passed to this hook, and `filter` null or a live
/// pointer from [`filter_new`] for the same `F`.
pub unsafe fn on_phase<F: HttpFilter>(
    filter_envoy: EnvoyPtr,
    filter: *const c_void,
    phase: Phase,
    end_of_stream: bool,
) -> u32 {
    let (Some(callbacks), false) = (abi::callbacks(), filter.is_null()) else {
        return status::CONTINUE;
    };
    // SAFETY: per the contract; Envoy calls one stream's hooks on one thread, never concurrently.
    let state = unsafe { &mut *(filter as *mut NativeFilter<F>) };
    let response_phase = matches!(
        phase,
        Phase::ResponseHeaders | Phase::ResponseBody | Phase::ResponseTrailers
    );
    if state.poisoned || (response_phase && !state.saw_request) {
        return status::CONTINUE;
    }
    state.saw_request = true;
    state.response_started |= response_phase;
    let mut host = NativeHost {
        callbacks,
        filter_envoy,
        outstanding: Some(&mut state.outstanding),
    };
    if phase == Phase::RequestHeaders
        && let Some(heartbeat) = state.heartbeat
    {
        host.increment(heartbeat, 1);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let filter = &mut state.filter;
        match phase {
            Phase::RequestHeaders => filter.on_request_headers(&mut host, end_of_stream),
            Phase::RequestBody => filter.on_request_body(&mut host, end_of_stream),
            Phase::ResponseHeaders => filter.on_response_headers(&mut host, end_of_stream),
            Phase::ResponseBody => filter.on_response_body(&mut host, end_of_stream),
            Phase::RequestTrailers => filter.on_request_trailers(&mut host),
            Phase::ResponseTrailers => filter.on_response_trailers(&mut host),
        }
    }));
    match outcome {
        Ok(Action::Continue) => status::CONTINUE,
        Ok(Action::Stop) => status::STOP,
        Ok(Action::Reply(reply)) => {
            host.send(&reply);
            status::STOP
        }
        Err(payload) => {
            let who = (&mut state.poisoned, state.panics, &*state.plugin);
            answer_panic(
                callbacks,
                &mut host,
                who,
                &format!("{phase:?}"),
                payload.as_ref(),
            )
        }
    }
}

/// Marks the stream poisoned, counts the panic, logs it and answers 500.
pub(crate) fn answer_panic(
    callbacks: &Callbacks,
    host: &mut NativeHost<'_>,
    (poisoned, panics, plugin): (&mut bool, Option<crate::Counter>, &str),
    phase: &str,
    payload: &(dyn Any + Send),
) -> u32 {
    *poisoned = true;
    if let Some(panics) = panics {
        host.increment(panics, 1);
    }
    let message = panic_message(payload);
    log(
        callbacks,
        LogLevel::Error,
        &format!("{plugin}: filter panicked in {phase}: {message}; answering 500"),
    );
    host.send(&LocalReply::text(
        500,
        "filter error\n",
        "meshplug_filter_panic",
    ));
    status::STOP
}

/// `envoy_dynamic_module_on_http_filter_stream_complete`.
///
/// # Safety
/// As for [`on_phase`].
pub unsafe fn stream_complete<F: HttpFilter>(filter_envoy: EnvoyPtr, filter: *const c_void) {
    let (Some(callbacks), false) = (abi::callbacks(), filter.is_null()) else {
        return;
    };
    // SAFETY: per the contract.
    let state = unsafe { &mut *(filter as *mut NativeFilter<F>) };
    if state.poisoned || !state.saw_request {
        return;
    }
    let mut host = NativeHost {
        callbacks,
        filter_envoy,
        outstanding: None,
    };
    if catch_unwind(AssertUnwindSafe(|| state.filter.on_complete(&mut host))).is_err() {
        state.poisoned = true;
        log(
            callbacks,
            LogLevel::Error,
            &format!("{}: filter panicked on completion", state.plugin),
        );
    }
}

/// [`crate::ENVOY_VERSION`], NUL-padded to 16 bytes, for the `meshplug_envoy_version` symbol.
pub const fn version_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let version = crate::ENVOY_VERSION.as_bytes();
    let mut i = 0;
    while i < version.len() && i < 15 {
        out[i] = version[i];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
