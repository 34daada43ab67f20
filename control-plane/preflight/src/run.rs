//! The pre-flight driver: compile, check, instantiate, start, configure, then fixtures.

use std::time::Instant;

use wasmtime::{Config, Engine, Instance, Module, Store, StoreLimitsBuilder, Strategy, Trap, Val};

use crate::Rejection;
use crate::abi::{allocator_export, check_module};
use crate::fixture::{Fixture, Outcome, compare};
use crate::host::{HostState, Pairs};
use crate::imports::linker;
use crate::schema::check_config;

/// Budgets for one pre-flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Fuel (about one unit per Wasm instruction) for each call into the module.
    pub fuel_per_call: u64,
    /// Largest linear memory the module may grow to, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_module_bytes: 32 * 1024 * 1024,
            fuel_per_call: 200_000_000,
            max_memory_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What a passing pre-flight saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The `proxy_abi_version_*` the module speaks.
    pub abi_version: String,
    /// Fixtures run, all passed.
    pub fixtures_passed: usize,
    /// The module's log lines.
    pub logs: Vec<String>,
    /// Compile time, ms.
    pub compile_ms: f64,
    /// Start, configure and fixtures, ms.
    pub run_ms: f64,
}

/// A reusable pre-flight engine.
#[derive(Clone)]
pub struct Preflight {
    engine: Engine,
    limits: Limits,
}

impl std::fmt::Debug for Preflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preflight")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Preflight {
    /// A pre-flight compiling with Winch, wasmtime's baseline compiler. The pre-flight sits on
    /// the hot-swap path and runs each module only briefly, so compile time is what counts:
    /// measured here (BENCHMARKS.md), Winch compiles the 162 KB `authz` build in about a quarter
    /// of Cranelift's time, and a 1.9 MB module about 100 times faster.
    pub fn new(limits: Limits) -> Result<Self, String> {
        Self::with_strategy(limits, Strategy::Winch)
    }

    /// A pre-flight compiling with `strategy` (Cranelift or Winch).
    pub fn with_strategy(limits: Limits, strategy: Strategy) -> Result<Self, String> {
        Self::with_options(limits, strategy, None)
    }

    /// A pre-flight compiling with `strategy`, keeping compiled modules in `cache_dir` (so the
    /// same module bytes compile once) when given.
    pub fn with_options(
        limits: Limits,
        strategy: Strategy,
        cache_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let mut config = Config::new();
        config.consume_fuel(true).strategy(strategy);
        if let Some(dir) = cache_dir {
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            let cache =
                wasmtime::Cache::new(cache_config).map_err(|e| format!("wasmtime cache: {e}"))?;
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(|e| format!("wasmtime engine: {e}"))?;
        Ok(Self { engine, limits })
    }

    /// Runs the whole pre-flight for filter `name`, its VM with no configuration and the
    /// default root id.
    pub fn run(
        &self,
        name: &str,
        wasm: &[u8],
        config: &[u8],
        fixtures: &[Fixture],
        schema: Option<&serde_json::Value>,
    ) -> Result<Report, Rejection> {
        self.run_in(&VmInputs::default(), name, wasm, config, fixtures, schema)
    }

    /// As [`Preflight::run`], the VM started as `vm` says (its configuration is handed to
    /// `proxy_on_vm_start`, its root id is the `plugin_root_id` property), as Envoy would.
    pub fn run_in(
        &self,
        vm: &VmInputs,
        name: &str,
        wasm: &[u8],
        config: &[u8],
        fixtures: &[Fixture],
        schema: Option<&serde_json::Value>,
    ) -> Result<Report, Rejection> {
        if wasm.is_empty() {
            return Err(Rejection::Empty);
        }
        if wasm.len() > self.limits.max_module_bytes {
            return Err(Rejection::TooLarge {
                size: wasm.len(),
                limit: self.limits.max_module_bytes,
            });
        }
        if let Some(schema) = schema {
            check_config(schema, config)?;
        }
        let compiling = Instant::now();
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| Rejection::InvalidModule(root_cause(&e)))?;
        let compile_ms = compiling.elapsed().as_secs_f64() * 1000.0;
        let abi_version = check_module(&module)?;
        let running = Instant::now();
        let mut vm = Vm::start(self, &module, (name, vm), config)?;
        for (index, fixture) in fixtures.iter().enumerate() {
            let outcome = vm.request(index as i32 + 2, fixture)?;
            compare(&fixture.expect, &outcome).map_err(|detail| Rejection::FixtureMismatch {
                fixture: fixture.name.clone(),
                detail,
            })?;
        }
        Ok(Report {
            abi_version,
            fixtures_passed: fixtures.len(),
            logs: vm.store.data().logs.clone(),
            compile_ms,
            run_ms: running.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

fn root_cause(err: &wasmtime::Error) -> String {
    err.chain()
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string)
}

const ROOT_CONTEXT: i32 = 1;

/// How the VM a plugin runs in is started: what Envoy's `vm_config.configuration` and the
/// plugin's `root_id` would give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmInputs {
    /// The VM's configuration, handed to `proxy_on_vm_start`.
    pub configuration: String,
    /// The plugin's root id (`plugin_root_id`).
    pub root_id: String,
}

/// One instantiated module with its root context configured.
struct Vm {
    store: Store<HostState>,
    instance: Instance,
    fuel: u64,
}

impl Vm {
    fn start(
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
        let linker = linker(module).map_err(|e| Rejection::Instantiate(root_cause(&e)))?;
        let instance = linker
            .instantiate(&mut store, module)
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

    fn logs(&self) -> Vec<String> {
        self.store.data().logs.clone()
    }

    /// Calls export `name` with `args` (cut to its arity) on a fresh fuel budget. `None` when
    /// the module does not export it or it returns nothing.
    fn call(&mut self, name: &str, args: &[i32]) -> Result<Option<i32>, Rejection> {
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
    fn request(&mut self, context: i32, fixture: &Fixture) -> Result<Outcome, Rejection> {
        self.prepare(fixture);
        self.call("proxy_on_context_create", &[context, ROOT_CONTEXT])?;
        let request = &fixture.request;
        let headers = self.store.data().request_headers.len() as i32;
        let action = self.call(
            "proxy_on_request_headers",
            &[context, headers, i32::from(request.body.is_none())],
        )?;
        if let Some(outcome) = self.local_reply_or_pause(fixture, action)? {
            return self.finish(context, outcome);
        }
        if let Some(body) = &request.body {
            let action = self.call("proxy_on_request_body", &[context, body.len() as i32, 1])?;
            if let Some(outcome) = self.local_reply_or_pause(fixture, action)? {
                return self.finish(context, outcome);
            }
        }
        let upstream_headers = Some(to_map(&self.store.data().request_headers));
        let upstream = &fixture.upstream;
        let state = self.store.data_mut();
        state.response_headers = vec![(":status".into(), upstream.status.to_string())];
        state.response_headers.extend(lowercase(&upstream.headers));
        state.response_body = upstream.body.clone().into_bytes();
        let (headers, body_len) = (
            state.response_headers.len() as i32,
            state.response_body.len() as i32,
        );
        self.call("proxy_on_response_headers", &[context, headers, 0])?;
        self.call("proxy_on_response_body", &[context, body_len, 1])?;
        if let Some(outcome) = self.local_reply_or_pause(fixture, Some(0))? {
            return self.finish(context, outcome);
        }
        let state = self.store.data();
        let mut headers = to_map(&state.response_headers);
        let status = headers
            .remove(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let outcome = Outcome {
            status,
            local_reply: false,
            headers,
            body: String::from_utf8_lossy(&state.response_body).into_owned(),
            upstream_headers,
        };
        self.finish(context, outcome)
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
        state.request_body = request.body.clone().unwrap_or_default().into_bytes();
        state.request_trailers.clear();
        state.response_headers.clear();
        state.response_trailers.clear();
        state.response_body.clear();
        state.local_reply = None;
    }

    /// The outcome when the filter answered locally; a rejection when it paused the request
    /// without answering (the sandbox has nothing that would resume it).
    fn local_reply_or_pause(
        &mut self,
        fixture: &Fixture,
        action: Option<i32>,
    ) -> Result<Option<Outcome>, Rejection> {
        if let Some(reply) = self.store.data_mut().local_reply.take() {
            return Ok(Some(Outcome {
                status: reply.status,
                local_reply: true,
                headers: to_map(&reply.headers),
                body: String::from_utf8_lossy(&reply.body).into_owned(),
                upstream_headers: None,
            }));
        }
        if action.is_some_and(|a| a != 0) {
            return Err(Rejection::FixtureMismatch {
                fixture: fixture.name.clone(),
                detail: "the filter paused the request without answering it".into(),
            });
        }
        Ok(None)
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
fn classify(err: &wasmtime::Error, phase: &str, fuel: u64, store: &Store<HostState>) -> Rejection {
    let logs = store.data().logs.clone();
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Rejection::FuelExhausted {
            phase: phase.to_string(),
            fuel,
            logs,
        },
        Some(trap) => Rejection::Trap {
            phase: phase.to_string(),
            message: trap.to_string(),
            logs,
        },
        None if phase == "instantiation" => Rejection::Instantiate(root_cause(err)),
        None => Rejection::Trap {
            phase: phase.to_string(),
            message: root_cause(err),
            logs,
        },
    }
}
