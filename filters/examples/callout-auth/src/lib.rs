//! Callout auth: on every request (or those under the configured `paths`) the filter pauses and asks another service (cluster
//! `httpbin` by default, `GET /bytes/1` with authority `httpbin.org`). When the first byte of the
//! answer is even the request goes on and its response is tagged `powered-by: proxy-wasm`; when
//! it is odd, empty, or the call fails, the filter answers 403 `Access forbidden.` itself.
//!
//! Written on meshplug's SDK to behave as the public proxy-wasm SDK's `http_auth_random` example
//! does (`../shared/compat/README.md`), header values included, so one test asserts both.

use std::sync::Arc;
use std::time::Duration;

use meshplug_sdk::{
    Action, CallId, CallResponse, Error, FilterConfig, Headers, Host, HttpCall, HttpFilter,
    LocalReply, LogLevel, Metrics,
};
use serde::Deserialize;

/// The configuration: which cluster to ask (JSON, all optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The cluster (default `httpbin`).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// The callout's timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Path prefixes to check (default: every request).
    #[serde(default)]
    pub paths: Vec<String>,
}

fn default_cluster() -> String {
    "httpbin".into()
}

fn default_timeout_ms() -> u64 {
    5000
}

/// The built configuration.
#[derive(Debug)]
pub struct Config {
    cluster: String,
    timeout: Duration,
    paths: Vec<String>,
}

impl FilterConfig for Config {
    const NAME: &'static str = "callout-auth";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        if settings.cluster.is_empty() {
            return Err(Error::config(Self::NAME, "cluster must not be empty"));
        }
        Ok(Self {
            cluster: settings.cluster,
            timeout: Duration::from_millis(settings.timeout_ms),
            paths: settings.paths,
        })
    }
}

/// The filter for one request.
#[derive(Debug)]
pub struct CalloutAuth {
    config: Arc<Config>,
    /// Whether this request was checked (only those get the tag).
    checked: bool,
}

/// The verdict on a callout's answer: allowed when its first byte is even.
pub fn allowed(response: &CallResponse) -> bool {
    response.failure.is_none() && response.body.first().is_some_and(|byte| byte % 2 == 0)
}

fn forbidden() -> LocalReply {
    LocalReply {
        status: 403,
        headers: vec![("powered-by".into(), "proxy-wasm".into())],
        body: b"Access forbidden.\n".to_vec(),
        details: "callout_auth_forbidden",
    }
}

impl HttpFilter for CalloutAuth {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self {
            config: Arc::clone(config),
            checked: false,
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let paths = &self.config.paths;
        let checked = paths.is_empty()
            || host.with_header(Headers::Request, ":path", |path| {
                path.is_some_and(|path| paths.iter().any(|p| path.starts_with(p.as_str())))
            });
        if !checked {
            return Action::Continue;
        }
        self.checked = true;
        let mut call = HttpCall::get(&self.config.cluster, "httpbin.org", "/bytes/1");
        call.timeout = self.config.timeout;
        match host.http_call(&call) {
            Ok(_) => Action::Stop,
            Err(error) => {
                host.log(LogLevel::Warn, &format!("callout not sent: {error}"));
                Action::Reply(forbidden())
            }
        }
    }

    fn on_http_call_response<H: Host>(
        &mut self,
        host: &mut H,
        _call: CallId,
        response: CallResponse,
    ) -> Action {
        if let Some(reason) = &response.failure {
            host.log(LogLevel::Warn, &format!("callout failed: {reason}"));
        }
        match allowed(&response) {
            true => Action::Continue,
            false => Action::Reply(forbidden()),
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        if self.checked {
            let _ = host.set_header(Headers::Response, "powered-by", "proxy-wasm");
        }
        Action::Continue
    }
}

meshplug_sdk::export_filter!(CalloutAuth);

#[cfg(test)]
mod tests;
