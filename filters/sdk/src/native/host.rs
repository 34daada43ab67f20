//! [`Host`] and [`Metrics`] over Envoy's dynamic-module callbacks. Every pointer passed to Envoy
//! is one Envoy handed us for the current hook, or a buffer we own for the length of the call.

use std::time::{SystemTime, UNIX_EPOCH};

use super::abi::{
    CALLOUT_INIT_SUCCESS, Callbacks, DefineMetricFn, EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr,
    METRICS_SUCCESS, ModuleBuffer, ModuleHttpHeader, SetHeaderFn, attribute_id, header_type,
    metadata_source,
};
use super::buffers::text;
pub use super::buffers::{owned_chunks, owned_headers};
use super::grpc::GrpcCalls;
use super::timers::StreamTimers;
use super::{body, shared};
use crate::Error;
use crate::filter::{LocalReply, Metrics};
use crate::host::{
    Body, CallId, Counter, GrpcCall, Headers, Histogram, Host, HttpCall, LogLevel, MetadataSource,
    Property, TimerId,
};

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
    /// The stream's timers and gRPC calls (none once the stream is complete).
    pub outstanding: Option<&'a mut Outstanding>,
}

/// What a stream has in flight besides Envoy's own events.
#[derive(Debug, Default)]
pub struct Outstanding {
    /// Its timers.
    pub timers: StreamTimers,
    /// Its gRPC calls.
    pub grpc: GrpcCalls,
}

fn map_type(map: Headers) -> u32 {
    match map {
        Headers::Request => header_type::REQUEST_HEADER,
        Headers::Response => header_type::RESPONSE_HEADER,
        Headers::RequestTrailers => header_type::REQUEST_TRAILER,
        Headers::ResponseTrailers => header_type::RESPONSE_TRAILER,
    }
}

impl NativeHost<'_> {
    /// Envoy's buffer of value `index` of header `name` (valid for this hook); with `count`,
    /// Envoy also writes how many values the header has.
    fn header_at(
        &self,
        map: Headers,
        name: &str,
        index: usize,
        count: Option<&mut usize>,
    ) -> Option<EnvoyBuffer> {
        let mut value = EnvoyBuffer::EMPTY;
        let count = count.map_or(std::ptr::null_mut(), |c| c as *mut usize);
        // SAFETY: filter_envoy is the current hook's; the key is ours; Envoy writes `value`,
        // and `count` when it is not null.
        let found = unsafe {
            (self.callbacks.get_header)(
                self.filter_envoy,
                map_type(map),
                ModuleBuffer::of(name.as_bytes()),
                &mut value,
                index,
                count,
            )
        };
        found.then_some(value)
    }

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
            .map(|(name, value)| ModuleHttpHeader::of(name, value))
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
        let value = self.header_at(map, name, 0, None);
        let Some(value) = value.filter(|v| !v.ptr.is_null()) else {
            return f(None);
        };
        // SAFETY: Envoy's buffer is valid until the end of this hook, and `f` runs within it
        // (the borrow cannot outlive the call).
        let bytes = unsafe { value.bytes() };
        f(std::str::from_utf8(bytes).ok())
    }

    fn header_values(&self, map: Headers, name: &str) -> Vec<String> {
        let (mut values, mut count, mut index) = (Vec::new(), 1usize, 0usize);
        while index < count {
            let Some(value) = self.header_at(map, name, index, Some(&mut count)) else {
                break;
            };
            // SAFETY: Envoy's buffer for this hook, copied now.
            if let Some(text) = unsafe { text(value.ptr, value.length) } {
                values.push(text.to_string());
            }
            index += 1;
        }
        values
    }

    fn headers(&self, map: Headers) -> Vec<(String, String)> {
        let kind = map_type(map);
        // SAFETY: filter_envoy is the current hook's.
        let count = unsafe { (self.callbacks.get_headers_size)(self.filter_envoy, kind) };
        if count == 0 {
            return Vec::new();
        }
        let mut slots = vec![EnvoyHttpHeader::EMPTY; count];
        // SAFETY: `slots` has room for the `count` headers Envoy said it has.
        let ok =
            unsafe { (self.callbacks.get_headers)(self.filter_envoy, kind, slots.as_mut_ptr()) };
        match ok {
            // SAFETY: filled by Envoy for this hook.
            true => unsafe { owned_headers(slots.as_ptr(), slots.len()) },
            false => Vec::new(),
        }
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
        body::read(self.callbacks, self.filter_envoy, which)
    }

    fn set_body(&mut self, which: Body, bytes: &[u8]) -> Result<(), Error> {
        body::replace(self.callbacks, self.filter_envoy, which, bytes)
    }

    fn http_call(&mut self, call: &HttpCall<'_>) -> Result<CallId, Error> {
        let pseudo = [
            (":method", call.method),
            (":path", call.path),
            (":authority", call.authority),
        ];
        let mut headers: Vec<ModuleHttpHeader> = pseudo
            .iter()
            .chain(call.headers.iter())
            .map(|(name, value)| ModuleHttpHeader::of(name, value))
            .collect();
        let mut id = 0u64;
        let timeout = u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: filter_envoy is the current hook's; every buffer is ours for the call.
        let result = unsafe {
            (self.callbacks.http_callout)(
                self.filter_envoy,
                &mut id,
                ModuleBuffer::of(call.cluster.as_bytes()),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(call.body),
                timeout,
            )
        };
        if result == CALLOUT_INIT_SUCCESS {
            return Ok(CallId(id));
        }
        let reason = super::abi::callout_refused(result);
        let error = Error::host("http_call", format!("{}: {reason}", call.cluster));
        self.log(LogLevel::Warn, &error.to_string());
        Err(error)
    }

    fn grpc_call(&mut self, call: &GrpcCall<'_>) -> Result<CallId, Error> {
        let result = match self.outstanding.as_deref_mut() {
            Some(out) => out.grpc.start(self.callbacks, self.filter_envoy, call),
            None => Err(Error::host("grpc_call", "the stream is complete")),
        };
        if let Err(error) = &result {
            self.log(LogLevel::Warn, &error.to_string());
        }
        result
    }

    fn set_timer(&mut self, delay: std::time::Duration) -> Result<TimerId, Error> {
        match self.outstanding.as_deref_mut() {
            Some(out) => out.timers.arm(self.callbacks, self.filter_envoy, delay),
            None => Err(Error::host("set_timer", "the stream is complete")),
        }
    }

    fn property(&self, property: Property) -> Option<String> {
        let id = match property {
            Property::SourceAddress => attribute_id::SOURCE_ADDRESS,
            Property::DestinationAddress => attribute_id::DESTINATION_ADDRESS,
            Property::RequestId => attribute_id::REQUEST_ID,
            Property::RequestProtocol => attribute_id::REQUEST_PROTOCOL,
            Property::RequestedServerName => attribute_id::REQUESTED_SERVER_NAME,
            Property::TlsVersion => attribute_id::TLS_VERSION,
        };
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: filter_envoy is the current hook's; Envoy writes `value`.
        let found =
            unsafe { (self.callbacks.get_attribute_string)(self.filter_envoy, id, &mut value) };
        // SAFETY: Envoy's buffer for this hook, copied now.
        found.then(|| unsafe { text(value.ptr, value.length) }.map(str::to_string))?
    }

    fn metadata(&self, source: MetadataSource, namespace: &str, key: &str) -> Option<String> {
        let source = match source {
            MetadataSource::Dynamic => metadata_source::DYNAMIC,
            MetadataSource::Route => metadata_source::ROUTE,
        };
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: filter_envoy is the current hook's; the names are ours; Envoy writes `value`.
        let found = unsafe {
            (self.callbacks.get_metadata_string)(
                self.filter_envoy,
                source,
                ModuleBuffer::of(namespace.as_bytes()),
                ModuleBuffer::of(key.as_bytes()),
                &mut value,
            )
        };
        // SAFETY: Envoy's buffer for this hook, copied now.
        found.then(|| unsafe { text(value.ptr, value.length) }.map(str::to_string))?
    }

    fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        // SAFETY: filter_envoy is the current hook's; the buffers are ours for the call.
        unsafe {
            (self.callbacks.set_dynamic_metadata_string)(
                self.filter_envoy,
                ModuleBuffer::of(namespace.as_bytes()),
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            );
        }
        Ok(())
    }

    fn filter_state(&self, key: &str) -> Option<Vec<u8>> {
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: filter_envoy is the current hook's; Envoy writes `value`.
        let found = unsafe {
            (self.callbacks.get_filter_state_bytes)(
                self.filter_envoy,
                ModuleBuffer::of(key.as_bytes()),
                &mut value,
            )
        };
        // SAFETY: Envoy's buffer for this hook, copied now.
        found.then(|| unsafe { value.bytes() }.to_vec())
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        // SAFETY: filter_envoy is the current hook's; the buffers are ours for the call.
        let ok = unsafe {
            (self.callbacks.set_filter_state_bytes)(
                self.filter_envoy,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        match ok {
            true => Ok(()),
            false => Err(Error::host(
                "set_filter_state",
                format!("{key} refused by Envoy"),
            )),
        }
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        shared::get(key)
    }

    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Error> {
        shared::set(key, value, cas)
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
