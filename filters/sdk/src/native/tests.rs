//! The native hooks against a fake Envoy: a callback table that records what the module asks.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::abi::{self, Callbacks, EnvoyBuffer, EnvoyPtr, ModuleBuffer, ModuleHttpHeader, status};
use super::{Phase, config_destroy, config_new, filter_destroy, filter_new, on_phase};
use crate::{Action, Error, FilterConfig, Host, HttpFilter, Metrics};

/// What the fake Envoy saw: replies sent (status) and counter increments (id, by).
type Seen = (Vec<u32>, Vec<(usize, u64)>);
static SEEN: Mutex<Seen> = Mutex::new((Vec::new(), Vec::new()));

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

    fn on_request_headers<H: Host>(&mut self, _host: &mut H, _end_of_stream: bool) -> Action {
        assert!(!self.0.panic_on_headers, "fragile filter met a request");
        Action::Continue
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
    let (replies, counts) = seen(|s| s.clone());
    assert!(replies.contains(&500));
    assert!(
        counts.contains(&(7, 1)),
        "the panic counter moved: {counts:?}"
    );
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
