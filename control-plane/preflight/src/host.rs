//! The host's state for one module instance, and access to the module's memory.

use std::collections::HashMap;

use wasmi::{Caller, Error, Extern, Memory, StoreLimits};

/// What a host function returns: a value, or an error that traps the module.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// proxy-wasm status codes.
pub(crate) mod status {
    pub(crate) const OK: i32 = 0;
    pub(crate) const NOT_FOUND: i32 = 1;
    pub(crate) const BAD_ARGUMENT: i32 = 2;
    pub(crate) const CAS_MISMATCH: i32 = 8;
    pub(crate) const INTERNAL_FAILURE: i32 = 10;
}

/// A header map as the host keeps it: ordered pairs, names lower-case.
pub(crate) type Pairs = Vec<(String, String)>;

/// A local reply the filter sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalReply {
    pub(crate) status: u16,
    pub(crate) headers: Pairs,
    pub(crate) body: Vec<u8>,
}

/// Everything the host functions read and write.
#[derive(Debug, Default)]
pub(crate) struct HostState {
    pub(crate) limits: StoreLimits,
    pub(crate) allocator: &'static str,
    pub(crate) logs: Vec<String>,
    pub(crate) plugin_name: String,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) root_id: String,
    pub(crate) request_headers: Pairs,
    pub(crate) request_trailers: Pairs,
    pub(crate) response_headers: Pairs,
    pub(crate) response_trailers: Pairs,
    pub(crate) request_body: Vec<u8>,
    pub(crate) response_body: Vec<u8>,
    pub(crate) local_reply: Option<LocalReply>,
    pub(crate) metrics: Vec<(String, i64)>,
    pub(crate) shared_data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Callouts made and not answered yet, in the order made.
    pub(crate) calls: std::collections::VecDeque<crate::callout::Call>,
    /// Callouts made so far in this request (the next one's index).
    pub(crate) calls_made: usize,
    /// The answer the callout being answered carries (headers, body, trailers).
    pub(crate) call_response: crate::callout::Answer,
    /// The gRPC status of the call being answered, for `proxy_get_status`.
    pub(crate) grpc_status: u32,
    /// Whether the filter resumed the stream (`proxy_continue_stream`) since last asked.
    pub(crate) resumed: bool,
    /// The root context's timer period, once the filter set one (0: no timer).
    pub(crate) tick_period_ms: u32,
    /// How far the sandbox's clock runs ahead of the real one: each tick delivered while a
    /// request waits on a timer moves it by the tick period, so no pre-flight waits for real.
    pub(crate) clock_ahead_ns: u64,
    /// The properties the current fixture sets, by NUL-separated path.
    pub(crate) fixture_properties: HashMap<Vec<u8>, Vec<u8>>,
}

impl HostState {
    /// The sandbox's clock, in nanoseconds since the Unix epoch.
    pub(crate) fn now_ns(&self) -> u64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        real.saturating_add(self.clock_ahead_ns)
    }

    /// The header map with proxy-wasm map type `map_type`.
    pub(crate) fn map(&mut self, map_type: i32) -> Option<&mut Pairs> {
        match map_type {
            0 => Some(&mut self.request_headers),
            1 => Some(&mut self.request_trailers),
            2 => Some(&mut self.response_headers),
            3 => Some(&mut self.response_trailers),
            // gRPC initial metadata and HTTP callout response headers; their trailers.
            4 | 6 => Some(&mut self.call_response.headers),
            5 | 7 => Some(&mut self.call_response.trailers),
            _ => None,
        }
    }

    /// The buffer with proxy-wasm buffer type `buffer_type`.
    pub(crate) fn buffer(&mut self, buffer_type: i32) -> Option<&mut Vec<u8>> {
        match buffer_type {
            0 => Some(&mut self.request_body),
            1 => Some(&mut self.response_body),
            // An HTTP callout's response body; a gRPC call's message.
            4 | 5 => Some(&mut self.call_response.body),
            6 => Some(&mut self.vm_config),
            7 => Some(&mut self.plugin_config),
            _ => None,
        }
    }

    /// Records a log line from the module.
    pub(crate) fn log(&mut self, line: String) {
        const MAX_LINES: usize = 200;
        if self.logs.len() < MAX_LINES {
            self.logs.push(line);
        }
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| Error::new("the module exports no memory"))
}

fn offset(value: i32) -> usize {
    value as u32 as usize
}

/// Reads `len` bytes at `ptr` from the module's memory.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = memory(caller)?;
    let mut buf = vec![0; offset(len)];
    memory
        .read(&*caller, offset(ptr), &mut buf)
        .map_err(|_| Error::new(format!("read of {len} bytes at {ptr} is out of bounds")))?;
    Ok(buf)
}

/// Reads a UTF-8 string (lossily) from the module's memory.
pub(crate) fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

/// Writes `bytes` at `ptr` into the module's memory.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory.write(&mut *caller, offset(ptr), bytes).map_err(|_| {
        Error::new(format!(
            "write of {} bytes at {ptr} is out of bounds",
            bytes.len()
        ))
    })
}

/// Hands `bytes` to the module: allocates with its allocator, copies, and writes the pointer
/// and length to `ret_ptr` and `ret_len`.
pub(crate) fn give(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> Result<()> {
    let allocator = caller.data().allocator;
    let alloc = caller
        .get_export(allocator)
        .and_then(Extern::into_func)
        .ok_or_else(|| Error::new("the module exports no allocator"))?
        .typed::<i32, i32>(&*caller)?;
    let len = i32::try_from(bytes.len()).map_err(|_| Error::new("buffer too large"))?;
    let ptr = alloc.call(&mut *caller, len)?;
    if ptr == 0 && len != 0 {
        return Err(Error::new("the module's allocator returned null"));
    }
    write(caller, ptr, bytes)?;
    write(caller, ret_ptr, &ptr.to_le_bytes())?;
    write(caller, ret_len, &len.to_le_bytes())
}

/// Encodes pairs the proxy-wasm way: count, then each key and value length, then each key and
/// value followed by a NUL.
pub(crate) fn serialize_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// Decodes [`serialize_pairs`]'s format.
pub(crate) fn deserialize_pairs(bytes: &[u8]) -> Option<Pairs> {
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(raw) as usize)
    };
    let count = word(0)?;
    let mut lengths = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        lengths.push((word(4 + i * 8)?, word(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut pairs = Vec::with_capacity(lengths.len());
    for (key_len, value_len) in lengths {
        let key = bytes.get(at..at + key_len)?;
        at += key_len + 1;
        let value = bytes.get(at..at + value_len)?;
        at += value_len + 1;
        pairs.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests;
