//! [`Host`] and [`Metrics`] over Envoy's dynamic-module callbacks. Every pointer passed to Envoy
//! is one Envoy handed us for the current hook, or a buffer we own for the length of the call.

use std::time::{SystemTime, UNIX_EPOCH};

use super::abi::{
    Callbacks, DefineMetricFn, EnvoyBuffer, EnvoyPtr, METRICS_SUCCESS, ModuleBuffer,
    ModuleHttpHeader, SetHeaderFn, body_type, header_type,
};
use crate::Error;
use crate::filter::{LocalReply, Metrics};
use crate::host::{Body, Counter, Headers, Histogram, Host, LogLevel};

/// Writes a log line through Envoy (the `dynamic_modules` logger).
pub fn log(callbacks: &Callbacks, level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Trace => 0,
        LogLevel::Debug => 1,
        LogLevel::Info => 2,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    };
    // SAFETY: the message buffer is ours and lives for the call.
    unsafe { (callbacks.log)(level, ModuleBuffer::of(message.as_bytes())) }
}

/// Defines metrics on an Envoy filter configuration while it is being created.
#[derive(Debug)]
pub struct NativeMetrics<'a> {
    /// The callbacks.
    pub callbacks: &'a Callbacks,
    /// `filter_config_envoy_ptr` from `config_new`.
    pub config_envoy: EnvoyPtr,
}

impl NativeMetrics<'_> {
    fn define(&self, define: DefineMetricFn, kind: &str, name: &str) -> Result<usize, Error> {
        let mut id = 0usize;
        // SAFETY: config_envoy came from Envoy for this config_new call; the name buffer and
        // the id slot are ours; no labels.
        let result = unsafe {
            define(
                self.config_envoy,
                ModuleBuffer::of(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        if result == METRICS_SUCCESS {
            Ok(id)
        } else {
            Err(Error::host(
                "define_metric",
                format!("{kind} {name}: result {result}"),
            ))
        }
    }
}

impl Metrics for NativeMetrics<'_> {
    fn counter(&mut self, name: &str) -> Result<Counter, Error> {
        self.define(self.callbacks.define_counter, "counter", name)
            .map(Counter)
    }

    fn histogram(&mut self, name: &str) -> Result<Histogram, Error> {
        self.define(self.callbacks.define_histogram, "histogram", name)
            .map(Histogram)
    }
}

/// One request's view of Envoy, valid for the hook it is made in.
#[derive(Debug)]
pub struct NativeHost<'a> {
    /// The callbacks.
    pub callbacks: &'a Callbacks,
    /// `filter_envoy_ptr` of the current hook.
    pub filter_envoy: EnvoyPtr,
}

fn map_type(map: Headers) -> u32 {
    match map {
        Headers::Request => header_type::REQUEST_HEADER,
        Headers::Response => header_type::RESPONSE_HEADER,
    }
}

impl NativeHost<'_> {
    fn write_header(
        &mut self,
        (call, write): (&'static str, SetHeaderFn),
        map: Headers,
        name: &str,
        value: ModuleBuffer,
    ) -> Result<(), Error> {
        // SAFETY: filter_envoy is the current hook's; name and value buffers live for the call.
        let ok = unsafe {
            write(
                self.filter_envoy,
                map_type(map),
                ModuleBuffer::of(name.as_bytes()),
                value,
            )
        };
        if ok {
            Ok(())
        } else {
            let error = Error::host(call, format!("{name} refused by Envoy"));
            self.log(LogLevel::Warn, &error.to_string());
            Err(error)
        }
    }

    /// Sends `reply` to the client.
    pub fn send(&mut self, reply: &LocalReply) {
        let mut headers: Vec<ModuleHttpHeader> = reply
            .headers
            .iter()
            .map(|(name, value)| ModuleHttpHeader {
                key_ptr: name.as_ptr().cast(),
                key_length: name.len(),
                value_ptr: value.as_ptr().cast(),
                value_length: value.len(),
            })
            .collect();
        // SAFETY: every buffer (headers, body, details) is ours and outlives the call.
        unsafe {
            (self.callbacks.send_response)(
                self.filter_envoy,
                u32::from(reply.status),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(&reply.body),
                ModuleBuffer::of(reply.details.as_bytes()),
            );
        }
    }
}

impl Host for NativeHost<'_> {
    fn header(&self, map: Headers, name: &str) -> Option<String> {
        self.with_header(map, name, |value| value.map(str::to_string))
    }

    fn with_header<R>(&self, map: Headers, name: &str, f: impl FnOnce(Option<&str>) -> R) -> R {
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: filter_envoy is the current hook's; the key is ours; Envoy writes `value`
        // and we pass no size slot.
        let found = unsafe {
            (self.callbacks.get_header)(
                self.filter_envoy,
                map_type(map),
                ModuleBuffer::of(name.as_bytes()),
                &mut value,
                0,
                std::ptr::null_mut(),
            )
        };
        if !found || value.ptr.is_null() {
            return f(None);
        }
        // SAFETY: Envoy's buffer is valid until the end of this hook, and `f` runs within it
        // (the borrow cannot outlive the call).
        let bytes = unsafe { value.bytes() };
        f(std::str::from_utf8(bytes).ok())
    }

    fn set_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        let set = ("set_header", self.callbacks.set_header);
        self.write_header(set, map, name, ModuleBuffer::of(value.as_bytes()))
    }

    fn add_header(&mut self, map: Headers, name: &str, value: &str) -> Result<(), Error> {
        let add = ("add_header", self.callbacks.add_header);
        self.write_header(add, map, name, ModuleBuffer::of(value.as_bytes()))
    }

    fn remove_header(&mut self, map: Headers, name: &str) -> Result<(), Error> {
        // Envoy's set_header with no value removes the header.
        let remove = ("remove_header", self.callbacks.set_header);
        self.write_header(remove, map, name, ModuleBuffer::NULL)
    }

    fn body(&self, which: Body) -> Vec<u8> {
        let kind = match which {
            Body::Request => body_type::RECEIVED_REQUEST_BODY,
            Body::Response => body_type::RECEIVED_RESPONSE_BODY,
        };
        // SAFETY: filter_envoy is the current hook's.
        let count = unsafe { (self.callbacks.get_body_chunks_size)(self.filter_envoy, kind) };
        if count == 0 {
            return Vec::new();
        }
        let mut chunks = vec![EnvoyBuffer::EMPTY; count];
        // SAFETY: `chunks` has room for the `count` buffers Envoy said it has.
        let ok = unsafe {
            (self.callbacks.get_body_chunks)(self.filter_envoy, kind, chunks.as_mut_ptr())
        };
        if !ok {
            return Vec::new();
        }
        // SAFETY: the chunks are Envoy's, valid for this hook; copied now.
        chunks
            .iter()
            .flat_map(|chunk| unsafe { chunk.bytes() }.iter().copied())
            .collect()
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(self.callbacks, level, message);
    }

    fn increment(&mut self, counter: Counter, by: u64) {
        // SAFETY: filter_envoy is the current hook's; the id came from define_counter; no labels.
        unsafe {
            (self.callbacks.increment_counter)(
                self.filter_envoy,
                counter.0,
                std::ptr::null_mut(),
                0,
                by,
            );
        }
    }

    fn record(&mut self, histogram: Histogram, value: u64) {
        // SAFETY: as for increment.
        unsafe {
            (self.callbacks.record_histogram_value)(
                self.filter_envoy,
                histogram.0,
                std::ptr::null_mut(),
                0,
                value,
            );
        }
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}
