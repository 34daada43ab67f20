//! Metadata reader: an earlier filter (in the tests, a Lua filter) copies request header
//! `x-custom-metadata`, upper-cased, into dynamic metadata `envoy.filters.http.lua` /
//! `uppercased-custom-metadata`. When it is there this filter answers 200 itself with header
//! `uppercased-metadata: <VALUE>`, `powered-by: proxy-wasm` and body
//! `Custom response with Envoy metadata: "<VALUE>"`; without it, the request passes.
//!
//! Written on meshplug's SDK to behave as the public proxy-wasm SDK's `envoy_filter_metadata`
//! example does (`../shared/compat/README.md`).

use std::sync::Arc;

use meshplug_sdk::{
    Action, Error, FilterConfig, Host, HttpFilter, LocalReply, MetadataSource, Metrics,
};
use serde::Deserialize;

/// Where to read (JSON, optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Default `envoy.filters.http.lua`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Default `uppercased-custom-metadata`.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_namespace() -> String {
    "envoy.filters.http.lua".into()
}

fn default_key() -> String {
    "uppercased-custom-metadata".into()
}

/// The built configuration.
#[derive(Debug)]
pub struct Config {
    namespace: String,
    key: String,
}

impl FilterConfig for Config {
    const NAME: &'static str = "metadata-reader";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            namespace: settings.namespace,
            key: settings.key,
        })
    }
}

/// The filter for one request.
#[derive(Debug)]
pub struct MetadataReader {
    config: Arc<Config>,
}

impl HttpFilter for MetadataReader {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self {
            config: Arc::clone(config),
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let (namespace, key) = (&self.config.namespace, &self.config.key);
        match host.metadata(MetadataSource::Dynamic, namespace, key) {
            Some(value) => Action::Reply(LocalReply {
                status: 200,
                headers: vec![
                    ("uppercased-metadata".into(), value.clone()),
                    ("powered-by".into(), "proxy-wasm".into()),
                ],
                body: format!("Custom response with Envoy metadata: {value:?}\n").into_bytes(),
                details: "metadata_reader",
            }),
            None => Action::Continue,
        }
    }
}

meshplug_sdk::export_filter!(MetadataReader);

#[cfg(test)]
mod tests;
