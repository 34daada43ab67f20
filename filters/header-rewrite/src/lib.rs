//! `header-rewrite`: adds, sets and removes request and response headers from configuration,
//! built with meshplug's SDK as `header-rewrite.wasm` and `libheader-rewrite.so`.
//!
//! For each direction the edits apply in a fixed order: `remove`, then `set` (replace every
//! value), then `add` (append a value). Pseudo-headers (`:path`, ...) cannot be edited, and a
//! name or value that is not a valid HTTP header is refused when the configuration loads.

// A filter runs inside every proxy: it answers errors, it never panics on purpose.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use meshplug_sdk::{Action, Error, FilterConfig, Headers, Host, HttpFilter, Metrics};
use serde::Deserialize;

/// Edits for one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edits {
    /// Headers to replace (or create).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Header values to append.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Headers to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The configuration: `{"request": {...}, "response": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteConfig {
    /// Edits to the request, before it goes upstream.
    #[serde(default)]
    pub request: Edits,
    /// Edits to the response, before it goes to the client.
    #[serde(default)]
    pub response: Edits,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_name(direction: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(Error::config(
            "header-rewrite",
            format!(
                "{direction}: {name:?} is not a valid header name (pseudo-headers cannot be edited)"
            ),
        ));
    }
    Ok(())
}

fn check_value(direction: &str, name: &str, value: &str) -> Result<(), Error> {
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(Error::config(
            "header-rewrite",
            format!("{direction}: the value of {name} contains CR, LF or NUL"),
        ));
    }
    Ok(())
}

impl Edits {
    fn checked(mut self, direction: &str) -> Result<Self, Error> {
        let lower = |map: BTreeMap<String, String>| -> BTreeMap<String, String> {
            map.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        };
        self.set = lower(self.set);
        self.add = lower(self.add);
        self.remove = self.remove.iter().map(|n| n.to_ascii_lowercase()).collect();
        for (name, value) in self.set.iter().chain(&self.add) {
            check_name(direction, name)?;
            check_value(direction, name, value)?;
        }
        for name in &self.remove {
            check_name(direction, name)?;
        }
        Ok(self)
    }

    /// Applies the edits to `map`.
    pub fn apply<H: Host>(&self, host: &mut H, map: Headers) {
        for name in &self.remove {
            let _ = host.remove_header(map, name);
        }
        for (name, value) in &self.set {
            let _ = host.set_header(map, name, value);
        }
        for (name, value) in &self.add {
            let _ = host.add_header(map, name, value);
        }
    }
}

impl FilterConfig for RewriteConfig {
    const NAME: &'static str = "header-rewrite";
    type Settings = RewriteConfig;

    fn build(settings: RewriteConfig, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            request: settings.request.checked("request")?,
            response: settings.response.checked("response")?,
        })
    }
}

/// One request's filter.
#[derive(Debug)]
pub struct HeaderRewrite {
    config: Arc<RewriteConfig>,
}

impl HttpFilter for HeaderRewrite {
    type Config = RewriteConfig;

    fn new(config: &Arc<RewriteConfig>) -> Self {
        Self {
            config: Arc::clone(config),
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        self.config.request.apply(host, Headers::Request);
        Action::Continue
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        self.config.response.apply(host, Headers::Response);
        Action::Continue
    }
}

meshplug_sdk::export_filter!(HeaderRewrite);

#[cfg(test)]
mod tests;
