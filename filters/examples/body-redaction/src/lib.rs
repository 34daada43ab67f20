//! Body redaction: a response body that contains `secret` is replaced, whole, by
//! `Original message body (<n> bytes) redacted.` and a newline (`<n>` the original size), and the
//! response loses its `content-length`. Other bodies pass unchanged. The filter holds every
//! chunk until the end of the stream, so a secret split across chunks is still found.
//!
//! Written on meshplug's SDK to behave as the public proxy-wasm SDK's `http_body` example does
//! (`../shared/compat/README.md`).

use std::sync::Arc;

use meshplug_sdk::{Action, Body, Error, FilterConfig, Headers, Host, HttpFilter, Metrics};
use serde::Deserialize;

/// The configuration: the word that marks a body secret (JSON, optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Default `secret`.
    #[serde(default = "default_marker")]
    pub marker: String,
}

fn default_marker() -> String {
    "secret".into()
}

/// The built configuration.
#[derive(Debug)]
pub struct Config {
    marker: Vec<u8>,
}

impl FilterConfig for Config {
    const NAME: &'static str = "body-redaction";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        if settings.marker.is_empty() {
            return Err(Error::config(Self::NAME, "marker must not be empty"));
        }
        Ok(Self {
            marker: settings.marker.into_bytes(),
        })
    }
}

/// The filter for one request.
#[derive(Debug)]
pub struct BodyRedaction {
    config: Arc<Config>,
}

/// The notice that replaces a body of `size` bytes.
pub fn notice(size: usize) -> String {
    format!("Original message body ({size} bytes) redacted.\n")
}

impl HttpFilter for BodyRedaction {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self {
            config: Arc::clone(config),
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        // The body may change size: the length is only known at the end.
        let _ = host.remove_header(Headers::Response, "content-length");
        Action::Continue
    }

    fn on_response_body<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Stop;
        }
        let body = host.body(Body::Response);
        let marker = &self.config.marker;
        if body
            .windows(marker.len())
            .any(|window| window == marker.as_slice())
        {
            let _ = host.set_body(Body::Response, notice(body.len()).as_bytes());
        }
        Action::Continue
    }
}

meshplug_sdk::export_filter!(BodyRedaction);

#[cfg(test)]
mod tests;
