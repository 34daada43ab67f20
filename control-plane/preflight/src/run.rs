//! The pre-flight driver: compile, check, instantiate, start, configure, then fixtures.

use std::time::Instant;

use wasmi::{CompilationMode, Config, Engine, Module};

use crate::Rejection;
use crate::abi::check_module;
use crate::fixture::{Fixture, compare};
use crate::schema::check_config;
use crate::vm::Vm;

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
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for Preflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preflight")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Preflight {
    /// A pre-flight on `wasmi` with fuel metering. The pre-flight sits on the hot-swap path
    /// and runs a module only briefly, so what counts is the time to its first call: the
    /// module is validated whole, but a function is translated only when it first runs
    /// (measured, BENCHMARKS.md: about 2 ms for the 190 KB `authz` build, where compiling it
    /// whole with wasmtime's Winch took about 45 ms).
    pub fn new(limits: Limits) -> Result<Self, String> {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::LazyTranslation)
            .wasm_simd(true)
            .wasm_relaxed_simd(true);
        let engine = Engine::new(&config);
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
        let module =
            Module::new(&self.engine, wasm).map_err(|e| Rejection::InvalidModule(e.to_string()))?;
        let compile_ms = compiling.elapsed().as_secs_f64() * 1000.0;
        let abi_version = check_module(&module)?;
        let running = Instant::now();
        let inputs = vm;
        let mut vm = Vm::start(self, &module, (name, inputs), config)?;
        if fixtures.is_empty() {
            crate::smoke::smoke(self, &module, (name, inputs), config, &mut vm)?;
        }
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

/// How the VM a plugin runs in is started: what Envoy's `vm_config.configuration` and the
/// plugin's `root_id` would give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmInputs {
    /// The VM's configuration, handed to `proxy_on_vm_start`.
    pub configuration: String,
    /// The plugin's root id (`plugin_root_id`).
    pub root_id: String,
}
