//! One instantiated module and the requests driven through it: the hooks called as Envoy
//! calls them, callouts answered from the fixture, local replies and pauses observed.

use wasmi::{Instance, Module, Store, StoreLimitsBuilder, TrapCode, Val};

use crate::Rejection;
use crate::abi::allocator_export;
use crate::callout::{Answer, Call, CallKind};
use crate::fixture::{CalloutResponse, Fixture, Outcome};
use crate::host::{HostState, Pairs};
use crate::imports::linker;
use crate::run::{Preflight, VmInputs};

pub(crate) const ROOT_CONTEXT: i32 = 1;

/// How long, by the sandbox's clock, a request may wait on the filter's timers.
pub(crate) const MAX_TIMER_WAIT_MS: u64 = 60_000;

/// The gRPC status a call that timed out closes with.
const GRPC_DEADLINE_EXCEEDED: i32 = 4;

/// Which body a hook streams.
#[derive(Debug, Clone, Copy)]
enum Side {
    Request,
    Response,
}

impl Side {
    fn hook(self) -> &'static str {
        match self {
            Self::Request => "proxy_on_request_body",
            Self::Response => "proxy_on_response_body",
        }
    }

    fn buffer(self, state: &mut HostState) -> &mut Vec<u8> {
        match self {
            Self::Request => &mut state.request_body,
            Self::Response => &mut state.response_body,
        }
    }
}

/// One instantiated module with its root context configured.
pub(crate) struct Vm {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    fuel: u64,
}

impl Vm {
    pub(crate) fn start(
        preflight: &Preflight,
        module: &Module,
        (name, inputs): (&str, &VmInputs),
        config: &[u8],
    ) -> Result<Self, Rejection> {
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(preflight.limits.max_memory_bytes)
                .build(),
            allocator: allocator_export(module).unwrap_or("malloc"),
            plugin_name: name.to_string(),
            plugin_config: config.to_vec(),
            vm_config: inputs.configuration.clone().into_bytes(),
            root_id: inputs.root_id.clone(),
            ..HostState::default()
        };
        let mut store = Store::new(module.engine(), state);
        store.limiter(|state| &mut state.limits);
        let fuel = preflight.limits.fuel_per_call;
        store
            .set_fuel(fuel)
            .map_err(|e| Rejection::Instantiate(e.to_string()))?;
        let linker = linker(module).map_err(|e| Rejection::Instantiate(e.to_string()))?;
        let instance = linker
            .instantiate_and_start(&mut store, module)
            .map_err(|e| classify(&e, "instantiation", fuel, &store))?;
        let mut vm = Self {
            store,
            instance,
            fuel,
        };
        vm.call("_initialize", &[])?;
        vm.call("proxy_on_context_create", &[ROOT_CONTEXT, 0])?;
        let vm_config_len = vm.store.data().vm_config.len() as i32;
        if vm.call("proxy_on_vm_start", &[ROOT_CONTEXT, vm_config_len])? == Some(0) {
            return Err(Rejection::VmStartFailed { logs: vm.logs() });
        }
        if vm.call("proxy_on_configure", &[ROOT_CONTEXT, config.len() as i32])? == Some(0) {
            return Err(Rejection::ConfigureFailed { logs: vm.logs() });
        }
        Ok(vm)
    }

    pub(crate) fn logs(&self) -> Vec<String> {
        self.store.data().logs.clone()
    }

    /// Whether the module exports function `name`.
    pub(crate) fn exports(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Calls export `name` with `args` (cut to its arity) on a fresh fuel budget. `None` when
    /// the module does not export it or it returns nothing.
    pub(crate) fn call(&mut self, name: &str, args: &[i32]) -> Result<Option<i32>, Rejection> {
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        let ty = func.ty(&self.store);
        let params: Vec<Val> = args
            .iter()
            .take(ty.params().len())
            .map(|a| Val::I32(*a))
            .collect();
        let mut results = vec![Val::I32(0); ty.results().len()];
        self.store
            .set_fuel(self.fuel)
            .map_err(|e| Rejection::Instantiate(e.to_string()))?;
        func.call(&mut self.store, &params, &mut results)
            .map_err(|e| classify(&e, name, self.fuel, &self.store))?;
        Ok(results.first().and_then(Val::i32))
    }

    /// Drives one fixture request through context `context`.
    pub(crate) fn request(
        &mut self,
        context: i32,
        fixture: &Fixture,
    ) -> Result<Outcome, Rejection> {
        self.prepare(fixture);
        for _ in 0..fixture.ticks {
            if self.store.data().tick_period_ms == 0 {
                break;
            }
            self.call("proxy_on_tick", &[ROOT_CONTEXT])?;
        }
        self.call("proxy_on_context_create", &[context, ROOT_CONTEXT])?;
        let request = &fixture.request;
        let headers = self.store.data().request_headers.len() as i32;
        let action = self.call(
            "proxy_on_request_headers",
            &[context, headers, i32::from(request.body.is_none())],
        )?;
        if let Some(outcome) = self.after_hook(context, fixture, action)? {
            return self.finish(context, outcome);
        }
        if let Some(body) = &request.body
            && let Err(outcome) = self.stream_body(context, fixture, Side::Request, body)?
        {
            return self.finish(context, outcome);
        }
        let upstream_headers = Some(to_map(&self.store.data().request_headers));
        let upstream = &fixture.upstream;
        let state = self.store.data_mut();
        state.response_headers = vec![(":status".into(), upstream.status.to_string())];
        state.response_headers.extend(lowercase(&upstream.headers));
        let headers = state.response_headers.len() as i32;
        self.call("proxy_on_response_headers", &[context, headers, 0])?;
        if let Some(outcome) = self.after_hook(context, fixture, Some(0))? {
            return self.finish(context, outcome);
        }
        let body = match self.stream_body(context, fixture, Side::Response, &upstream.body)? {
            Ok(body) => body,
            Err(outcome) => return self.finish(context, outcome),
        };
        let mut headers = to_map(&self.store.data().response_headers);
        let status = headers
            .remove(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let outcome = Outcome {
            status,
            local_reply: false,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            upstream_headers,
        };
        self.finish(context, outcome)
    }

    /// Hands `body` to the filter as Envoy does: in chunks of the fixture's `chunk_size`
    /// (one without it), end of stream on the last. Each call sees what is buffered: the
    /// chunks the filter paused on, then this one; what it lets through (`Continue`, or the
    /// end of stream once resumed) goes on. Returns what went on, or the filter's answer.
    fn stream_body(
        &mut self,
        context: i32,
        fixture: &Fixture,
        side: Side,
        body: &str,
    ) -> Result<Result<Vec<u8>, Outcome>, Rejection> {
        let body = body.as_bytes();
        let size = fixture.chunk_size.filter(|n| *n > 0).unwrap_or(body.len());
        let chunks: Vec<&[u8]> = match body.is_empty() {
            true => vec![body],
            false => body.chunks(size.max(1)).collect(),
        };
        let last = chunks.len() - 1;
        let mut passed = Vec::new();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let end = i == last;
            let buffered = side.buffer(self.store.data_mut());
            buffered.extend_from_slice(chunk);
            let len = buffered.len() as i32;
            let action = self.call(side.hook(), &[context, len, i32::from(end)])?;
            // Before the end, a pause buffers; at the end nothing else would resume it.
            let judged = if end { action } else { Some(0) };
            if let Some(outcome) = self.after_hook(context, fixture, judged)? {
                return Ok(Err(outcome));
            }
            if end || action.unwrap_or(0) == 0 {
                passed.append(side.buffer(self.store.data_mut()));
            }
        }
        Ok(Ok(passed))
    }

    fn prepare(&mut self, fixture: &Fixture) {
        let request = &fixture.request;
        let state = self.store.data_mut();
        state.request_headers = vec![
            (":method".into(), request.method.clone()),
            (":path".into(), request.path.clone()),
            (":authority".into(), "preflight.local".into()),
            (":scheme".into(), "http".into()),
        ];
        state.request_headers.extend(lowercase(&request.headers));
        // Bodies arrive chunk by chunk (`stream_body`).
        state.request_body.clear();
        state.fixture_properties = fixture
            .properties
            .iter()
            .map(|p| (p.path.join("\0").into_bytes(), p.value.clone().into_bytes()))
            .collect();
        state.request_trailers.clear();
        state.response_headers.clear();
        state.response_trailers.clear();
        state.response_body.clear();
        state.local_reply = None;
        state.calls.clear();
        state.calls_made = 0;
        state.resumed = false;
    }

    /// After a hook: the callouts it made are answered (in order, from the fixture), then the
    /// outcome when the filter answered locally; a rejection when it paused the request and
    /// nothing resumed it (the sandbox has nothing else that would).
    fn after_hook(
        &mut self,
        context: i32,
        fixture: &Fixture,
        action: Option<i32>,
    ) -> Result<Option<Outcome>, Rejection> {
        self.answer_calls(context, fixture)?;
        if action.is_some_and(|a| a != 0) {
            self.wait_on_timers(context, fixture)?;
        }
        let state = self.store.data_mut();
        let resumed = std::mem::take(&mut state.resumed);
        if let Some(reply) = state.local_reply.take() {
            return Ok(Some(Outcome {
                status: reply.status,
                local_reply: true,
                headers: to_map(&reply.headers),
                body: String::from_utf8_lossy(&reply.body).into_owned(),
                upstream_headers: None,
            }));
        }
        if action.is_some_and(|a| a != 0) && !resumed {
            return Err(Rejection::FixtureMismatch {
                fixture: fixture.name.clone(),
                detail: "the filter paused the request without answering it".into(),
            });
        }
        Ok(None)
    }

    /// While the request waits and the filter keeps a timer going, delivers its ticks, the
    /// sandbox's clock moving one period each (up to [`MAX_TIMER_WAIT_MS`] of it, never real
    /// time), and answers the callouts they start, until the filter resumes or answers.
    fn wait_on_timers(&mut self, context: i32, fixture: &Fixture) -> Result<(), Rejection> {
        let mut waited_ms = 0u64;
        loop {
            let state = self.store.data();
            if state.resumed || state.local_reply.is_some() {
                return Ok(());
            }
            let period = u64::from(state.tick_period_ms);
            if period == 0 || waited_ms >= MAX_TIMER_WAIT_MS {
                return Ok(());
            }
            self.store.data_mut().clock_ahead_ns += period * 1_000_000;
            waited_ms += period;
            self.call("proxy_on_tick", &[ROOT_CONTEXT])?;
            self.answer_calls(context, fixture)?;
        }
    }

    /// Answers each callout the filter made, through its callbacks, until none is left or
    /// the filter answered the request.
    fn answer_calls(&mut self, context: i32, fixture: &Fixture) -> Result<(), Rejection> {
        while let Some(call) = self.store.data_mut().calls.pop_front() {
            let given = fixture.callouts.get(call.index).cloned();
            let answer = given.unwrap_or_else(CalloutResponse::failed);
            if let Some(expected) = answer.cluster.as_ref().filter(|c| **c != call.cluster) {
                return Err(Rejection::FixtureMismatch {
                    fixture: fixture.name.clone(),
                    detail: format!(
                        "callout {} went to cluster `{}`, the fixture expects `{expected}`",
                        call.index, call.cluster
                    ),
                });
            }
            let (headers, body, trailers) = self.hand_over(&call, &answer);
            let token = call.token as i32;
            match (call.kind, answer.timeout) {
                (CallKind::Http, _) => {
                    let args = [context, token, headers, body, trailers];
                    self.call("proxy_on_http_call_response", &args)?;
                }
                (CallKind::Grpc, true) => {
                    self.store.data_mut().grpc_status = GRPC_DEADLINE_EXCEEDED as u32;
                    self.call(
                        "proxy_on_grpc_close",
                        &[context, token, GRPC_DEADLINE_EXCEEDED],
                    )?;
                }
                (CallKind::Grpc, false) => {
                    self.store.data_mut().grpc_status = answer.grpc_status;
                    if headers > 0 {
                        let args = [context, token, headers];
                        self.call("proxy_on_grpc_receive_initial_metadata", &args)?;
                    }
                    self.call("proxy_on_grpc_receive", &[context, token, body])?;
                    if trailers > 0 {
                        let args = [context, token, trailers];
                        self.call("proxy_on_grpc_receive_trailing_metadata", &args)?;
                    }
                    let code = answer.grpc_status as i32;
                    self.call("proxy_on_grpc_close", &[context, token, code])?;
                }
            }
            self.store.data_mut().call_response = Answer::default();
            if self.store.data().local_reply.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Puts `answer` where the callout maps and buffers read it; returns the counts of
    /// headers, body bytes and trailers the callback is told.
    fn hand_over(&mut self, call: &Call, answer: &CalloutResponse) -> (i32, i32, i32) {
        let mut handed = Answer::default();
        if !answer.timeout {
            if call.kind == CallKind::Http {
                handed
                    .headers
                    .push((":status".into(), answer.status.to_string()));
            }
            handed.headers.extend(lowercase(&answer.headers));
            handed.body = answer.body.clone().into_bytes();
            handed.trailers = lowercase(&answer.trailers);
        }
        let counts = (
            handed.headers.len() as i32,
            handed.body.len() as i32,
            handed.trailers.len() as i32,
        );
        self.store.data_mut().call_response = handed;
        counts
    }

    fn finish(&mut self, context: i32, outcome: Outcome) -> Result<Outcome, Rejection> {
        self.call("proxy_on_log", &[context])?;
        self.call("proxy_on_done", &[context])?;
        self.call("proxy_on_delete", &[context])?;
        Ok(outcome)
    }
}

fn lowercase(headers: &std::collections::BTreeMap<String, String>) -> Pairs {
    headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn to_map(pairs: &Pairs) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for (key, value) in pairs {
        map.entry(key.clone()).or_insert_with(|| value.clone());
    }
    map
}

/// Turns a failed call into a rejection: fuel exhausted, a trap, or another host error.
fn classify(err: &wasmi::Error, phase: &str, fuel: u64, store: &Store<HostState>) -> Rejection {
    let logs = store.data().logs.clone();
    match err.as_trap_code() {
        Some(TrapCode::OutOfFuel) => Rejection::FuelExhausted {
            phase: phase.to_string(),
            fuel,
            logs,
        },
        Some(trap) => Rejection::Trap {
            phase: phase.to_string(),
            message: trap.to_string(),
            logs,
        },
        None if phase == "instantiation" => Rejection::Instantiate(err.to_string()),
        None => Rejection::Trap {
            phase: phase.to_string(),
            message: err.to_string(),
            logs,
        },
    }
}
