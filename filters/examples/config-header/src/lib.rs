//! Config header: the filter's configuration is plain text, not JSON, and every response
//! carries it, byte for byte, in `custom-header`. An empty configuration is refused.
//!
//! Written on meshplug's SDK to behave as the public proxy-wasm SDK's `http_config` example does
//! (`../shared/compat/README.md`). The point is [`FilterConfig::parse`]: a filter may read its
//! configuration however it likes; the default is JSON.

use std::sync::Arc;

use meshplug_sdk::{Action, Error, FilterConfig, Headers, Host, HttpFilter, Metrics};

/// The header's value.
#[derive(Debug)]
pub struct Config {
    value: String,
}

impl FilterConfig for Config {
    const NAME: &'static str = "config-header";
    type Settings = String;

    fn parse(bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|_| "the configuration is not UTF-8 text".into())
    }

    fn build(value: String, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::config(
                Self::NAME,
                "the configuration (the header's value) is empty",
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::config(
                Self::NAME,
                "a header value cannot hold CR, LF or NUL",
            ));
        }
        Ok(Self { value })
    }
}

/// The filter for one request.
#[derive(Debug)]
pub struct ConfigHeader {
    config: Arc<Config>,
}

impl HttpFilter for ConfigHeader {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self {
            config: Arc::clone(config),
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let _ = host.set_header(Headers::Response, "custom-header", &self.config.value);
        Action::Continue
    }
}

meshplug_sdk::export_filter!(ConfigHeader);

#[cfg(test)]
mod tests;
