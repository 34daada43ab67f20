//! The native hooks against a fake Envoy: a callback table that records what the module asks.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::abi::{self, Callbacks, EnvoyBuffer, EnvoyPtr, ModuleBuffer, ModuleHttpHeader, status};
use super::{Phase, config_destroy, config_new, filter_destroy, filter_new, on_phase};
use crate::{Action, Error, FilterConfig, Host, HttpFilter, Metrics};

/// What the fake Envoy saw: replies sent (status), counter increments (id, by), and how
/// many times the module resumed decoding and encoding.
type Seen = (Vec<u32>, Vec<(usize, u64)>, (u32, u32));
static SEEN: Mutex<Seen> = Mutex::new((Vec::new(), Vec::new(), (0, 0)));

fn seen<R>(f: impl FnOnce(&mut Seen) -> R) -> R {
    f(&mut SEEN.lock().unwrap_or_else(PoisonError::into_inner))
}

unsafe extern "C" fn fake_log(_level: u32, _message: ModuleBuffer) {}
unsafe extern "C" fn fake_get_header(
    _: EnvoyPtr,
    _: u32,
    _: ModuleBuffer,
    _: *mut EnvoyBuffer,
    _: usize,
    _: *mut usize,
) -> bool {
    false
}
unsafe extern "C" fn fake_set_header(
    _: EnvoyPtr,
    _: u32,
    _: ModuleBuffer,
    _: ModuleBuffer,
) -> bool {
    true
}
unsafe extern "C" fn fake_send_response(
    _: EnvoyPtr,
    status: u32,
    _: *mut ModuleHttpHeader,
    _: usize,
    _: ModuleBuffer,
    _: ModuleBuffer,
) {
    seen(|s| s.0.push(status));
}
unsafe extern "C" fn fake_chunks_size(_: EnvoyPtr, _: u32) -> usize {
    0
}
unsafe extern "C" fn fake_chunks(_: EnvoyPtr, _: u32, _: *mut EnvoyBuffer) -> bool {
    false
}
unsafe extern "C" fn fake_define(
    _: EnvoyPtr,
    name: ModuleBuffer,
    _: *mut ModuleBuffer,
    _: usize,
    id: *mut usize,
) -> u32 {
    // SAFETY: the module passes its own live buffer and id slot.
    unsafe {
        let name = std::slice::from_raw_parts(name.ptr.cast::<u8>(), name.length);
        *id = if name.starts_with(b"meshplug_panics_") {
            7
        } else {
            1
        };
    }
    abi::METRICS_SUCCESS
}
unsafe extern "C" fn fake_update(
    _: EnvoyPtr,
    id: usize,
    _: *mut ModuleBuffer,
    _: usize,
    by: u64,
) -> u32 {
    seen(|s| s.1.push((id, by)));
    abi::METRICS_SUCCESS
}

unsafe extern "C" fn fake_headers_size(_: EnvoyPtr, _: u32) -> usize {
    0
}
unsafe extern "C" fn fake_headers(_: EnvoyPtr, _: u32, _: *mut abi::EnvoyHttpHeader) -> bool {
    false
}
unsafe extern "C" fn fake_append(_: EnvoyPtr, _: u32, _: ModuleBuffer) -> bool {
    false
}
unsafe extern "C" fn fake_drain(_: EnvoyPtr, _: u32, _: usize) -> bool {
    false
}
unsafe extern "C" fn fake_flag(_: EnvoyPtr) -> bool {
    false
}
unsafe extern "C" fn fake_continue_decoding(_: EnvoyPtr) {
    seen(|s| s.2.0 += 1);
}
unsafe extern "C" fn fake_continue_encoding(_: EnvoyPtr) {
    seen(|s| s.2.1 += 1);
}
unsafe extern "C" fn fake_callout(
    _: EnvoyPtr,
    id: *mut u64,
    _: ModuleBuffer,
    _: *mut ModuleHttpHeader,
    _: usize,
    _: ModuleBuffer,
    _: u64,
) -> u32 {
    // SAFETY: the module passes its own id slot.
    unsafe { *id = 42 };
    abi::CALLOUT_INIT_SUCCESS
}
unsafe extern "C" fn fake_attribute(_: EnvoyPtr, _: u32, _: *mut EnvoyBuffer) -> bool {
    false
}
unsafe extern "C" fn fake_get_metadata(
    _: EnvoyPtr,
    _: u32,
    _: ModuleBuffer,
    _: ModuleBuffer,
    _: *mut EnvoyBuffer,
) -> bool {
    false
}
unsafe extern "C" fn fake_set_metadata(
    _: EnvoyPtr,
    _: ModuleBuffer,
    _: ModuleBuffer,
    _: ModuleBuffer,
) {
}
unsafe extern "C" fn fake_set_state(_: EnvoyPtr, _: ModuleBuffer, _: ModuleBuffer) -> bool {
    true
}
unsafe extern "C" fn fake_get_state(_: EnvoyPtr, _: ModuleBuffer, _: *mut EnvoyBuffer) -> bool {
    false
}

/// Events committed to the fake scheduler, and schedulers deleted.
static COMMITTED: Mutex<(Vec<u64>, u32)> = Mutex::new((Vec::new(), 0));

unsafe extern "C" fn fake_scheduler_new(_: EnvoyPtr) -> *mut c_void {
    std::ptr::dangling_mut::<c_void>()
}
unsafe extern "C" fn fake_scheduler_commit(_: *mut c_void, event: u64) {
    COMMITTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .0
        .push(event);
}
unsafe extern "C" fn fake_scheduler_delete(_: *mut c_void) {
    COMMITTED.lock().unwrap_or_else(PoisonError::into_inner).1 += 1;
}

unsafe extern "C" fn fake_start_stream(
    _: EnvoyPtr,
    id: *mut u64,
    _: ModuleBuffer,
    _: *mut ModuleHttpHeader,
    _: usize,
    _: ModuleBuffer,
    _: bool,
    _: u64,
) -> u32 {
    // SAFETY: the module passes its own id slot.
    unsafe { *id = 7 };
    abi::CALLOUT_INIT_SUCCESS
}

fn install_fake() {
    abi::install(Callbacks {
        log: fake_log,
        get_header: fake_get_header,
        set_header: fake_set_header,
        add_header: fake_set_header,
        send_response: fake_send_response,
        get_body_chunks_size: fake_chunks_size,
        get_body_chunks: fake_chunks,
        define_counter: fake_define,
        define_histogram: fake_define,
        increment_counter: fake_update,
        record_histogram_value: fake_update,
        get_headers_size: fake_headers_size,
        get_headers: fake_headers,
        append_body: fake_append,
        drain_body: fake_drain,
        received_buffered_request_body: fake_flag,
        received_buffered_response_body: fake_flag,
        http_callout: fake_callout,
        continue_decoding: fake_continue_decoding,
        continue_encoding: fake_continue_encoding,
        get_attribute_string: fake_attribute,
        get_metadata_string: fake_get_metadata,
        set_dynamic_metadata_string: fake_set_metadata,
        set_filter_state_bytes: fake_set_state,
        get_filter_state_bytes: fake_get_state,
        start_http_stream: fake_start_stream,
        scheduler_new: fake_scheduler_new,
        scheduler_commit: fake_scheduler_commit,
        scheduler_delete: fake_scheduler_delete,
    });
}

#[derive(Debug, Deserialize)]
struct Settings {
    panic_on_headers: bool,
}

#[derive(Debug)]
struct Config {
    panic_on_headers: bool,
}

impl FilterConfig for Config {
    const NAME: &'static str = "fragile";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            panic_on_headers: settings.panic_on_headers,
        })
    }
}

struct Fragile(Arc<Config>);

impl HttpFilter for Fragile {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self(Arc::clone(config))
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        assert!(!self.0.panic_on_headers, "fragile filter met a request");
        match host.http_call(&crate::HttpCall::get("auth", "auth", "/check")) {
            Ok(crate::CallId(42)) => Action::Stop,
            other => panic!("unexpected callout start: {other:?}"),
        }
    }

    fn on_http_call_response<H: Host>(
        &mut self,
        _host: &mut H,
        call: crate::CallId,
        response: crate::CallResponse,
    ) -> Action {
        assert_eq!(call, crate::CallId(42));
        match response.status {
            200 => Action::Continue,
            _ => Action::Reply(crate::LocalReply::text(403, "no\n", "denied")),
        }
    }
}

fn buffer(text: &str) -> EnvoyBuffer {
    EnvoyBuffer {
        ptr: text.as_ptr().cast(),
        length: text.len(),
    }
}

fn new_config(json: &str) -> *const c_void {
    install_fake();
    let envoy = std::ptr::dangling_mut::<c_void>();
    // SAFETY: both buffers are live for the call, as Envoy's would be.
    unsafe { config_new::<Fragile>(envoy, buffer("fragile"), buffer(json)) }
}

#[test]
fn a_refused_configuration_is_a_null_config() {
    assert!(new_config(r#"{"panic_on_headers": "yes"}"#).is_null());
    assert!(new_config("{").is_null());
}

#[test]
fn a_panic_in_a_callback_answers_500_counts_and_skips_the_rest_of_the_stream() {
    let config = new_config(r#"{"panic_on_headers": true}"#);
    assert!(!config.is_null());
    let envoy = std::ptr::dangling_mut::<c_void>();
    // SAFETY: config and filter come from our own hooks; the envoy pointer is never
    // dereferenced by the fake callbacks.
    unsafe {
        let filter = filter_new::<Fragile>(config, envoy);
        assert!(!filter.is_null());
        let first = on_phase::<Fragile>(envoy, filter, Phase::RequestHeaders, true);
        assert_eq!(first, status::STOP);
        let later = on_phase::<Fragile>(envoy, filter, Phase::ResponseHeaders, true);
        assert_eq!(later, status::CONTINUE, "a poisoned filter is skipped");
        filter_destroy::<Fragile>(filter);
        config_destroy::<Fragile>(config);
    }
    let (replies, counts, _) = seen(|s| s.clone());
    assert!(replies.contains(&500));
    assert!(
        counts.contains(&(7, 1)),
        "the panic counter moved: {counts:?}"
    );
}

#[test]
fn a_callout_answer_resumes_the_request_or_answers_locally() {
    let config = new_config(r#"{"panic_on_headers": false}"#);
    let envoy = std::ptr::dangling_mut::<c_void>();
    let status_header = |value: &'static str| abi::EnvoyHttpHeader {
        key_ptr: ":status".as_ptr().cast(),
        key_length: 7,
        value_ptr: value.as_ptr().cast(),
        value_length: value.len(),
    };
    let (ok, denied) = (status_header("200"), status_header("500"));
    let before = seen(|s| s.clone());
    // SAFETY: config and filters come from our own hooks; the header arrays are live.
    unsafe {
        let filter = filter_new::<Fragile>(config, envoy);
        let first = on_phase::<Fragile>(envoy, filter, Phase::RequestHeaders, true);
        assert_eq!(first, status::STOP, "waits for the callout");
        super::callout_done::<Fragile>(envoy, filter, 42, 0, &ok, 1, std::ptr::null(), 0);
        filter_destroy::<Fragile>(filter);
        let filter = filter_new::<Fragile>(config, envoy);
        on_phase::<Fragile>(envoy, filter, Phase::RequestHeaders, true);
        super::callout_done::<Fragile>(envoy, filter, 42, 0, &denied, 1, std::ptr::null(), 0);
        filter_destroy::<Fragile>(filter);
        config_destroy::<Fragile>(config);
    }
    let after = seen(|s| s.clone());
    assert_eq!(after.2.0, before.2.0 + 1, "the first request resumed");
    assert_eq!(after.2.1, before.2.1, "nothing resumed a response");
    assert!(after.0.len() > before.0.len() && after.0.contains(&403));
}

#[test]
fn null_pointers_from_envoy_are_never_followed() {
    install_fake();
    // SAFETY: null is what the hooks must tolerate.
    unsafe {
        assert!(filter_new::<Fragile>(std::ptr::null(), std::ptr::null_mut()).is_null());
        let status = on_phase::<Fragile>(
            std::ptr::null_mut(),
            std::ptr::null(),
            Phase::RequestHeaders,
            true,
        );
        assert_eq!(status, status::CONTINUE);
        filter_destroy::<Fragile>(std::ptr::null());
        config_destroy::<Fragile>(std::ptr::null());
    }
}

#[test]
fn program_init_refuses_to_load_without_envoys_callbacks() {
    // This test binary is not Envoy: the callbacks are missing, so the module refuses to load.
    assert!(super::program_init().is_null());
}

#[test]
fn a_timer_is_committed_to_the_streams_scheduler_and_never_after_it_is_deleted() {
    install_fake();
    let envoy = std::ptr::dangling_mut::<c_void>();
    let callbacks = abi::callbacks().expect("installed");
    let mut timers = super::timers::StreamTimers::default();
    let soon = timers.arm(callbacks, envoy, std::time::Duration::from_millis(1));
    let late = timers.arm(callbacks, envoy, std::time::Duration::from_secs(3600));
    assert_eq!((soon, late), (Ok(crate::TimerId(1)), Ok(crate::TimerId(2))));
    let committed = || {
        COMMITTED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !committed().0.contains(&1) {
        assert!(std::time::Instant::now() < deadline, "timer 1 never fired");
        std::thread::yield_now();
    }
    let deleted = committed().1;
    timers.close(callbacks);
    assert_eq!(committed().1, deleted + 1, "the scheduler is deleted once");
    timers.close(callbacks);
    assert_eq!(committed().1, deleted + 1, "and only once");
    assert!(
        !committed().0.contains(&2),
        "the hour-long timer has not fired"
    );
}

#[test]
fn a_refused_callout_says_why() {
    assert_eq!(abi::callout_refused(2), "no such cluster");
    assert!(abi::callout_refused(4).contains("healthy host"));
    assert!(abi::callout_refused(9).contains("result 9"));
}
