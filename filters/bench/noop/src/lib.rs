//! Bench-only: a filter on meshplug's SDK that does nothing but what the SDK does for every
//! filter (the heartbeat counter). `bench-filters --only floor` runs it as `.wasm` and `.so`:
//! what it costs per request is the floor under every SDK filter on that target, Envoy's part
//! (a Wasm context or a dynamic-module filter per stream) and the SDK's together.

use std::sync::Arc;

use meshplug_sdk::{Error, FilterConfig, HttpFilter, Metrics};

/// No settings: any JSON object.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoSettings {}

/// The (empty) configuration.
#[derive(Debug)]
pub struct NoopConfig;

impl FilterConfig for NoopConfig {
    const NAME: &'static str = "noop";
    type Settings = NoSettings;

    fn build(_settings: NoSettings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self)
    }
}

/// One request's filter: every hook is the SDK's default, `Continue`.
#[derive(Debug)]
pub struct Noop;

impl HttpFilter for Noop {
    type Config = NoopConfig;

    fn new(_config: &Arc<NoopConfig>) -> Self {
        Self
    }
}

meshplug_sdk::export_filter!(Noop);
