//! [`Harness`]: whole requests through one filter on the mock host, with Envoy's rules: a
//! filter that stops a direction holds it until a later callback continues; body chunks it
//! stops on are buffered and handed back with the next one; callout answers arrive after the
//! callback that started them; a filter whose request callback never ran (an earlier filter
//! answered) sees no response callback either.

use std::sync::Arc;

use super::{MockHost, MockMetrics, RecordedCall};
use crate::Error;
use crate::filter::{Action, FilterConfig, HttpFilter, Loaded, LocalReply, load};
use crate::host::{CallResponse, GrpcResponse, Host};

/// A request for [`Harness::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Headers, including `:method`, `:path` and `:authority`.
    pub headers: Vec<(String, String)>,
    /// Body (may be empty).
    pub body: Vec<u8>,
    /// Deliver the body in chunks of this size (default: one chunk).
    pub chunk_size: Option<usize>,
    /// Trailers (may be empty).
    pub trailers: Vec<(String, String)>,
}

impl Request {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), path.into()),
                (":authority".into(), "test".into()),
            ],
            body: Vec::new(),
            chunk_size: None,
            trailers: Vec::new(),
        }
    }

    /// `POST path` with `body`.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut request = Self::get(path);
        request.headers[0].1 = "POST".into();
        request.body = body.into();
        request
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Adds a trailer.
    #[must_use]
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Delivers the body in chunks of `size` bytes.
    #[must_use]
    pub fn chunked(mut self, size: usize) -> Self {
        self.chunk_size = Some(size.max(1));
        self
    }
}

/// What the upstream answers (default: 200, no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Status.
    pub status: u16,
    /// Headers besides `:status`.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Deliver the body in chunks of this size (default: one chunk).
    pub chunk_size: Option<usize>,
    /// Trailers.
    pub trailers: Vec<(String, String)>,
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            chunk_size: None,
            trailers: Vec::new(),
        }
    }
}

/// What came of one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exchange {
    /// The filter's local reply, if it answered.
    pub reply: Option<LocalReply>,
    /// The request headers the upstream saw, if the request got there.
    pub upstream_headers: Option<Vec<(String, String)>>,
    /// The request body the upstream saw.
    pub upstream_body: Vec<u8>,
    /// The request trailers the upstream saw.
    pub upstream_trailers: Vec<(String, String)>,
    /// The response headers the client saw (from the upstream, after the filter).
    pub response_headers: Vec<(String, String)>,
    /// The response body the client saw (from the upstream, after the filter).
    pub response_body: Vec<u8>,
    /// The response trailers the client saw.
    pub response_trailers: Vec<(String, String)>,
    /// Callouts the filter started.
    pub calls: Vec<RecordedCall>,
    /// The filter stopped a direction and never resumed it: in Envoy the stream would hang
    /// until a timeout.
    pub stalled: bool,
}

impl Exchange {
    /// The status the client got (0 when stalled).
    pub fn status(&self) -> u16 {
        self.reply.as_ref().map_or_else(
            || {
                lookup(&self.response_headers, ":status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            },
            |r| r.status,
        )
    }

    /// A response header the client saw (local reply or upstream response).
    pub fn response_header(&self, name: &str) -> Option<String> {
        match &self.reply {
            Some(reply) => lookup(&reply.headers, name),
            None => lookup(&self.response_headers, name),
        }
    }

    /// The body the client saw (local reply or upstream response).
    pub fn body(&self) -> &[u8] {
        self.reply
            .as_ref()
            .map_or(&self.response_body, |reply| &reply.body)
    }

    /// A request header the upstream saw.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_headers.as_ref().and_then(|h| lookup(h, name))
    }
}

fn lookup(headers: &[(String, String)], name: &str) -> Option<String> {
    crate::host::value_of(headers, name).map(str::to_string)
}

type Responder = Box<dyn FnMut(&RecordedCall) -> CallResponse>;
type GrpcResponder = Box<dyn FnMut(&RecordedCall) -> GrpcResponse>;

/// A filter loaded on the mock host, with an upstream and a callout responder.
pub struct Harness<F: HttpFilter> {
    loaded: Loaded<F::Config>,
    /// The host state kept across requests (counters, logs, clock, shared data).
    pub host: MockHost,
    /// What the upstream answers.
    pub upstream: Upstream,
    responder: Option<Responder>,
    grpc_responder: Option<GrpcResponder>,
}

impl<F: HttpFilter> std::fmt::Debug for Harness<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("filter", &<F::Config as FilterConfig>::NAME)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Which way a part of the exchange goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

/// How one direction ended.
enum Flow {
    /// Passed on: headers, body and trailers as the next hop sees them.
    Passed(Vec<(String, String)>, Vec<u8>, Vec<(String, String)>),
    /// The filter answered.
    Replied(LocalReply),
    /// The filter never resumed it.
    Stalled,
}

impl<F: HttpFilter> Harness<F> {
    /// Loads `config` as both backends would; the error is what Envoy would be told.
    pub fn new(config: &str) -> Result<Self, Error> {
        let mut metrics = MockMetrics::default();
        let plugin = <F::Config as FilterConfig>::NAME;
        let loaded = load::<F::Config>(plugin, config.as_bytes(), &mut metrics)?;
        let host = MockHost {
            metric_names: metrics.names,
            ..MockHost::default()
        };
        Ok(Self {
            loaded,
            host,
            upstream: Upstream::default(),
            responder: None,
            grpc_responder: None,
        })
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Arc<F::Config> {
        &self.loaded.config
    }

    /// Moves the clock forward.
    pub fn advance_ms(&mut self, ms: u64) {
        self.host.now_ms += ms;
    }

    /// Answers every callout with `responder` (without one, a callout fails).
    pub fn answer_calls(&mut self, responder: impl FnMut(&RecordedCall) -> CallResponse + 'static) {
        self.responder = Some(Box::new(responder));
    }

    /// Answers every gRPC call with `responder` (without one, a gRPC call fails: unavailable).
    pub fn answer_grpc_calls(
        &mut self,
        responder: impl FnMut(&RecordedCall) -> GrpcResponse + 'static,
    ) {
        self.grpc_responder = Some(Box::new(responder));
    }

    /// An earlier filter answered the request locally: Envoy runs this filter's response
    /// callbacks on that answer on a `.so`, but the SDK skips them on both targets.
    pub fn earlier_filter_replied(&mut self, reply: &LocalReply) -> Exchange {
        // The instance exists (Envoy creates the whole chain) but none of its callbacks runs.
        let _filter = F::new(&self.loaded.config);
        Exchange {
            reply: Some(reply.clone()),
            ..Exchange::default()
        }
    }

    /// Sends one request through a new filter instance, then the upstream's answer back.
    pub fn send(&mut self, request: &Request) -> Exchange {
        let mut filter = F::new(&self.loaded.config);
        self.host.calls.clear();
        self.host.timers.clear();
        self.host.request_body.clear();
        self.host.response_body.clear();
        if let Some(heartbeat) = self.loaded.heartbeat {
            self.host.increment(heartbeat, 1);
        }
        let parts = (&request.headers, &request.body, request.chunk_size);
        let flow = self.direction(&mut filter, Dir::Request, parts, &request.trailers);
        let mut exchange = Exchange::default();
        match flow {
            Flow::Passed(headers, body, trailers) => {
                exchange.upstream_headers = Some(headers);
                exchange.upstream_body = body;
                exchange.upstream_trailers = trailers;
                self.respond(&mut filter, &mut exchange);
            }
            Flow::Replied(reply) => exchange.reply = Some(reply),
            Flow::Stalled => exchange.stalled = true,
        }
        filter.on_complete(&mut self.host);
        exchange.calls = self.host.calls.clone();
        exchange
    }

    fn respond(&mut self, filter: &mut F, exchange: &mut Exchange) {
        let upstream = self.upstream.clone();
        let mut headers = vec![(":status".to_string(), upstream.status.to_string())];
        headers.extend(upstream.headers.iter().cloned());
        let parts = (&headers, &upstream.body, upstream.chunk_size);
        match self.direction(filter, Dir::Response, parts, &upstream.trailers) {
            Flow::Passed(headers, body, trailers) => {
                exchange.response_headers = headers;
                exchange.response_body = body;
                exchange.response_trailers = trailers;
            }
            Flow::Replied(reply) => exchange.reply = Some(reply),
            Flow::Stalled => exchange.stalled = true,
        }
    }

    /// Runs one direction through the filter: headers, body chunks, trailers.
    fn direction(
        &mut self,
        filter: &mut F,
        dir: Dir,
        (headers, body, chunk_size): (&Vec<(String, String)>, &Vec<u8>, Option<usize>),
        trailers: &[(String, String)],
    ) -> Flow {
        let host = &mut self.host;
        match dir {
            Dir::Request => host.request_headers = headers.clone(),
            Dir::Response => host.response_headers = headers.clone(),
        }
        let no_body = body.is_empty() && trailers.is_empty();
        let mut stopped = false;
        let action = match dir {
            Dir::Request => filter.on_request_headers(&mut self.host, no_body),
            Dir::Response => filter.on_response_headers(&mut self.host, no_body),
        };
        if let Some(reply) = self.settle(filter, action, &mut stopped) {
            return Flow::Replied(reply);
        }
        let mut passed = Vec::new();
        let chunks: Vec<&[u8]> = match chunk_size {
            Some(size) => body.chunks(size).collect(),
            None if body.is_empty() => Vec::new(),
            None => vec![body.as_slice()],
        };
        for (at, chunk) in chunks.iter().enumerate() {
            let end = at + 1 == chunks.len() && trailers.is_empty();
            if let Some(reply) = self.body_chunk(filter, dir, chunk, end, &mut stopped) {
                return Flow::Replied(reply);
            }
            if !stopped {
                passed.append(self.held(dir));
            }
        }
        let trailers = match self.trailers(filter, dir, trailers, &mut stopped) {
            Ok(trailers) => trailers,
            Err(reply) => return Flow::Replied(reply),
        };
        if stopped {
            return Flow::Stalled;
        }
        passed.append(self.held(dir));
        let headers = match dir {
            Dir::Request => self.host.request_headers.clone(),
            Dir::Response => self.host.response_headers.clone(),
        };
        Flow::Passed(headers, passed, trailers)
    }

    fn held(&mut self, dir: Dir) -> &mut Vec<u8> {
        match dir {
            Dir::Request => &mut self.host.request_body,
            Dir::Response => &mut self.host.response_body,
        }
    }

    fn body_chunk(
        &mut self,
        filter: &mut F,
        dir: Dir,
        chunk: &[u8],
        end: bool,
        stopped: &mut bool,
    ) -> Option<LocalReply> {
        self.held(dir).extend_from_slice(chunk);
        let action = match dir {
            Dir::Request => filter.on_request_body(&mut self.host, end),
            Dir::Response => filter.on_response_body(&mut self.host, end),
        };
        self.settle(filter, action, stopped)
    }

    fn trailers(
        &mut self,
        filter: &mut F,
        dir: Dir,
        trailers: &[(String, String)],
        stopped: &mut bool,
    ) -> Result<Vec<(String, String)>, LocalReply> {
        if trailers.is_empty() {
            return Ok(Vec::new());
        }
        let action = match dir {
            Dir::Request => {
                self.host.request_trailers = trailers.to_vec();
                filter.on_request_trailers(&mut self.host)
            }
            Dir::Response => {
                self.host.response_trailers = trailers.to_vec();
                filter.on_response_trailers(&mut self.host)
            }
        };
        if let Some(reply) = self.settle(filter, action, stopped) {
            return Err(reply);
        }
        Ok(match dir {
            Dir::Request => self.host.request_trailers.clone(),
            Dir::Response => self.host.response_trailers.clone(),
        })
    }

    /// Applies a callback's action, then delivers the answers to callouts started so far and
    /// fires the timers set so far (soonest first, moving the clock to each).
    fn settle(&mut self, filter: &mut F, action: Action, stopped: &mut bool) -> Option<LocalReply> {
        match action {
            Action::Continue => *stopped = false,
            Action::Stop => *stopped = true,
            Action::Reply(reply) => return Some(reply),
        }
        if let Some(reply) = self.answer_calls_so_far(filter, stopped) {
            return Some(reply);
        }
        while let Some(at) = self.next_timer() {
            let (id, delay, _) = self.host.timers[at];
            self.host.timers[at].2 = true;
            self.host.now_ms += delay.as_millis() as u64;
            match filter.on_timer(&mut self.host, id) {
                Action::Continue => *stopped = false,
                Action::Stop => {}
                Action::Reply(reply) => return Some(reply),
            }
            if let Some(reply) = self.answer_calls_so_far(filter, stopped) {
                return Some(reply);
            }
        }
        None
    }

    /// Hands `call`'s answer to the filter.
    fn deliver(&mut self, filter: &mut F, call: &RecordedCall) -> Action {
        if call.grpc {
            let response = match self.grpc_responder.as_mut() {
                Some(responder) => responder(call),
                None => GrpcResponse {
                    status: 14,
                    message: Some("the harness has no gRPC responder".into()),
                    body: Vec::new(),
                },
            };
            return filter.on_grpc_call_response(&mut self.host, call.id, response);
        }
        let response = match self.responder.as_mut() {
            Some(responder) => responder(call),
            None => CallResponse::failed("the harness has no callout responder"),
        };
        filter.on_http_call_response(&mut self.host, call.id, response)
    }

    fn next_timer(&self) -> Option<usize> {
        let pending = self.host.timers.iter().enumerate().filter(|(_, t)| !t.2);
        pending.min_by_key(|(_, t)| t.1).map(|(at, _)| at)
    }

    fn answer_calls_so_far(&mut self, filter: &mut F, stopped: &mut bool) -> Option<LocalReply> {
        let mut delivered = self.host.calls.iter().filter(|c| c.answered).count();
        while delivered < self.host.calls.len() {
            self.host.calls[delivered].answered = true;
            let call = self.host.calls[delivered].clone();
            delivered += 1;
            match self.deliver(filter, &call) {
                Action::Continue => *stopped = false,
                Action::Stop => {}
                Action::Reply(reply) => return Some(reply),
            }
        }
        None
    }
}
