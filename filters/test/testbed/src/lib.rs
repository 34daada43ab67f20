//! Filter variants the rollout tests deploy, one behaviour per build, chosen at build time by
//! `MESHPLUG_VARIANT`:
//!
//! | variant | behaviour |
//! |---|---|
//! | `good` (default) | passes every request, tags the response |
//! | `good-v2` | the same, a different build (another sha) |
//! | `configure-fails` | `on_configure` returns false: Envoy NACKs the update |
//! | `panic` | panics on every request: Envoy answers 503 (`wasm_fail_stream`) |
//! | `status-500` | answers every request with 500 |
//! | `slow` | holds every request 300 ms (a root-context timer, not a busy loop) |
//! | `loop` | never returns from the request path: the worker hangs until Envoy's watchdog kills it |
//!
//! Every variant that sees a request counts a heartbeat, `meshplug_heartbeat_<filter>`, and
//! tags its responses `x-meshplug-filter: variant/<variant>`. Not for production.

/// The variant compiled in.
pub fn variant() -> Variant {
    Variant::parse(option_env!("MESHPLUG_VARIANT").unwrap_or("good"))
}

/// What a build does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Passes requests.
    Good,
    /// Passes requests; another build.
    GoodV2,
    /// Refuses its configuration.
    ConfigureFails,
    /// Panics per request.
    Panic,
    /// Answers 500.
    Status500,
    /// Adds latency.
    Slow,
    /// Hangs the worker.
    Loop,
}

impl Variant {
    /// Reads a variant name; unknown names are `Good`.
    pub fn parse(name: &str) -> Self {
        match name {
            "good-v2" => Self::GoodV2,
            "configure-fails" => Self::ConfigureFails,
            "panic" => Self::Panic,
            "status-500" => Self::Status500,
            "slow" => Self::Slow,
            "loop" => Self::Loop,
            _ => Self::Good,
        }
    }

    /// The name used in the response tag.
    pub fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::GoodV2 => "good-v2",
            Self::ConfigureFails => "configure-fails",
            Self::Panic => "panic",
            Self::Status500 => "status-500",
            Self::Slow => "slow",
            Self::Loop => "loop",
        }
    }
}

/// How long the slow variant holds a request.
pub const SLOW_MS: u64 = 300;

#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in [
            Variant::Good,
            Variant::GoodV2,
            Variant::ConfigureFails,
            Variant::Panic,
            Variant::Status500,
            Variant::Slow,
            Variant::Loop,
        ] {
            assert_eq!(Variant::parse(v.name()), v);
        }
        assert_eq!(Variant::parse("nonsense"), Variant::Good);
    }
}
