//! Unary gRPC for a `.so`. Envoy's dynamic-module ABI has no gRPC call, but it has streaming
//! HTTP callouts that deliver headers, data and trailers: a unary call is one such stream (a
//! `POST /<service>/<method>` with the length-prefixed message, ended at once), and the answer
//! is read from its trailers (`grpc-status`, `grpc-message`) and its one data frame.

use super::abi::{CALLOUT_INIT_SUCCESS, Callbacks, EnvoyPtr, ModuleBuffer, ModuleHttpHeader};
use crate::Error;
use crate::host::{CallId, GrpcCall, GrpcResponse, value_of};

/// `UNAVAILABLE`: what a call that never got an answer reports.
pub const UNAVAILABLE: u32 = 14;

/// What has arrived of one call.
#[derive(Debug, Default)]
struct Partial {
    headers: Vec<(String, String)>,
    data: Vec<u8>,
    trailers: Vec<(String, String)>,
}

/// A stream's gRPC calls in flight.
#[derive(Debug, Default)]
pub struct GrpcCalls {
    open: Vec<(u64, Partial)>,
}

impl GrpcCalls {
    /// Starts `call` as a streaming callout.
    pub fn start(
        &mut self,
        callbacks: &Callbacks,
        filter_envoy: EnvoyPtr,
        call: &GrpcCall<'_>,
    ) -> Result<CallId, Error> {
        let path = format!("/{}/{}", call.service, call.method);
        let timeout_ms = call.timeout.as_millis().to_string();
        let pairs = [
            (":method", "POST"),
            (":path", path.as_str()),
            (":authority", call.cluster),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", &format!("{timeout_ms}m")),
        ];
        let mut headers: Vec<ModuleHttpHeader> = pairs
            .iter()
            .map(|(name, value)| ModuleHttpHeader::of(name, value))
            .collect();
        let body = frame(call.message);
        let mut id = 0u64;
        let timeout = u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: filter_envoy is the current hook's; every buffer is ours for the call.
        let result = unsafe {
            (callbacks.start_http_stream)(
                filter_envoy,
                &mut id,
                ModuleBuffer::of(call.cluster.as_bytes()),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(&body),
                true,
                timeout,
            )
        };
        if result != CALLOUT_INIT_SUCCESS {
            let reason = format!("{}: {}", call.cluster, super::abi::callout_refused(result));
            return Err(Error::host("grpc_call", reason));
        }
        self.open.push((id, Partial::default()));
        Ok(CallId(id))
    }

    fn partial(&mut self, id: u64) -> Option<&mut Partial> {
        self.open.iter_mut().find(|(i, _)| *i == id).map(|(_, p)| p)
    }

    /// Whether `id` is one of this stream's gRPC calls.
    pub fn owns(&self, id: u64) -> bool {
        self.open.iter().any(|(i, _)| *i == id)
    }

    /// The answer's headers arrived.
    pub fn headers(&mut self, id: u64, headers: Vec<(String, String)>) {
        if let Some(partial) = self.partial(id) {
            partial.headers = headers;
        }
    }

    /// Answer bytes arrived (bounded: a unary answer larger than 4 MiB is cut, and refused).
    pub fn data(&mut self, id: u64, bytes: &[u8]) {
        if let Some(partial) = self.partial(id)
            && partial.data.len() + bytes.len() <= 4 << 20
        {
            partial.data.extend_from_slice(bytes);
        }
    }

    /// The answer's trailers arrived.
    pub fn trailers(&mut self, id: u64, trailers: Vec<(String, String)>) {
        if let Some(partial) = self.partial(id) {
            partial.trailers = trailers;
        }
    }

    /// The call ended: its response, if it was ours.
    pub fn finish(&mut self, id: u64) -> Option<GrpcResponse> {
        let at = self.open.iter().position(|(i, _)| *i == id)?;
        let (_, partial) = self.open.remove(at);
        Some(response(&partial))
    }

    /// The call was reset before an answer.
    pub fn reset(&mut self, id: u64, reason: u32) -> Option<GrpcResponse> {
        let at = self.open.iter().position(|(i, _)| *i == id)?;
        self.open.remove(at);
        Some(GrpcResponse {
            status: UNAVAILABLE,
            message: Some(format!("the call was reset (Envoy reason {reason})")),
            body: Vec::new(),
        })
    }
}

/// The length-prefixed message (not compressed).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// The gRPC status an HTTP status stands for when the answer carries none (the gRPC spec's
/// mapping).
fn from_http(status: Option<&str>) -> u32 {
    match status.and_then(|s| s.parse::<u16>().ok()) {
        Some(400) => 13,
        Some(401) => 16,
        Some(403) => 7,
        Some(404) => 12,
        Some(429 | 502 | 503 | 504) => UNAVAILABLE,
        _ => 2,
    }
}

/// The response a finished stream carries.
fn response(partial: &Partial) -> GrpcResponse {
    // A "trailers-only" answer puts the status in the headers.
    let status =
        value_of(&partial.trailers, "grpc-status").or(value_of(&partial.headers, "grpc-status"));
    let message = value_of(&partial.trailers, "grpc-message")
        .or(value_of(&partial.headers, "grpc-message"))
        .map(str::to_string);
    let status = match status.and_then(|s| s.parse().ok()) {
        Some(status) => status,
        None => from_http(value_of(&partial.headers, ":status")),
    };
    let body = match (status, unframe(&partial.data)) {
        (0, Some(body)) => body.to_vec(),
        (0, None) if !partial.data.is_empty() => {
            return GrpcResponse {
                status: 13,
                message: Some("the answer is not one length-prefixed message".into()),
                body: Vec::new(),
            };
        }
        _ => Vec::new(),
    };
    GrpcResponse {
        status,
        message,
        body,
    }
}

/// The message inside one uncompressed length-prefixed frame.
fn unframe(data: &[u8]) -> Option<&[u8]> {
    let (&[flag, a, b, c, d], rest) = data.split_first_chunk::<5>()?;
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    (flag == 0 && rest.len() == length).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::{Partial, frame, response};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_ok_answer_gives_its_message() {
        let partial = Partial {
            headers: pairs(&[(":status", "200")]),
            data: frame(b"\x08\x01"),
            trailers: pairs(&[("grpc-status", "0")]),
        };
        let answer = response(&partial);
        assert_eq!(
            (answer.status, answer.body.as_slice()),
            (0, &b"\x08\x01"[..])
        );
    }

    #[test]
    fn a_failure_in_trailers_or_headers_or_http_is_its_status() {
        let trailers_only = Partial {
            headers: pairs(&[
                (":status", "200"),
                ("grpc-status", "7"),
                ("grpc-message", "no"),
            ]),
            ..Partial::default()
        };
        let answer = response(&trailers_only);
        assert_eq!((answer.status, answer.message.as_deref()), (7, Some("no")));
        let http = Partial {
            headers: pairs(&[(":status", "503")]),
            ..Partial::default()
        };
        assert_eq!(response(&http).status, 14);
        let garbled = Partial {
            headers: pairs(&[(":status", "200")]),
            data: vec![0, 0, 0, 9, 1],
            trailers: pairs(&[("grpc-status", "0")]),
        };
        assert_eq!(response(&garbled).status, 13);
    }
}
