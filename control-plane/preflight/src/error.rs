/// Why an artifact was refused. Each names its cause; those raised while the module ran carry
/// the module's own log lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// Over the configured limit.
    #[error("artifact is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a valid WebAssembly module (truncated, corrupt, or not Wasm at all).
    #[error("not a valid Wasm module: {0}")]
    InvalidModule(String),
    /// No `proxy_abi_version_*` export.
    #[error("not a proxy-wasm module: it exports no proxy_abi_version_* function")]
    NotProxyWasm,
    /// A `proxy_abi_version_*` Envoy 1.40 does not speak.
    #[error("unsupported proxy-wasm ABI version {0} (Envoy 1.40 supports 0_1_0, 0_2_0, 0_2_1)")]
    UnsupportedAbi(String),
    /// A required export is missing.
    #[error("missing required export {0}")]
    MissingExport(String),
    /// An import Envoy does not provide.
    #[error("imports {module}.{name}, which Envoy does not provide")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// Instantiation failed (e.g. an import with the wrong signature).
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// The configuration does not satisfy the filter's schema.
    #[error("configuration invalid at {path}: {message}")]
    Schema {
        /// JSON pointer to the offending field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `proxy_on_vm_start` returned false.
    #[error("on_vm_start returned false{}", logs_suffix(.logs))]
    VmStartFailed {
        /// The module's log lines.
        logs: Vec<String>,
    },
    /// `proxy_on_configure` returned false.
    #[error("on_configure returned false: the filter refused its configuration{}", logs_suffix(.logs))]
    ConfigureFailed {
        /// The module's log lines.
        logs: Vec<String>,
    },
    /// The module ran out of fuel: an infinite loop or far too much work.
    #[error("{phase} did not finish within {fuel} fuel units (an infinite loop?){}", logs_suffix(.logs))]
    FuelExhausted {
        /// What was running.
        phase: String,
        /// The budget.
        fuel: u64,
        /// The module's log lines.
        logs: Vec<String>,
    },
    /// The module trapped (a Rust panic aborts into a trap).
    #[error("{phase} trapped: {message}{}", logs_suffix(.logs))]
    Trap {
        /// What was running.
        phase: String,
        /// The trap.
        message: String,
        /// The module's log lines.
        logs: Vec<String>,
    },
    /// The module cannot run in an HTTP filter slot: it makes no HTTP filter context.
    #[error("not an HTTP filter: {reason}{}", logs_suffix(.logs))]
    NotAnHttpFilter {
        /// Why: a background-only plugin, a network filter, with what the smoke request saw.
        reason: String,
        /// The module's log lines.
        logs: Vec<String>,
    },
    /// A fixture's outcome differs from its expectation.
    #[error("fixture {fixture:?}: {detail}")]
    FixtureMismatch {
        /// The fixture.
        fixture: String,
        /// What differed.
        detail: String,
    },
}

fn logs_suffix(logs: &[String]) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!("; filter log: {}", logs.join(" | "))
    }
}
