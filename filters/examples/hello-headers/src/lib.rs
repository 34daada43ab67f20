//! Hello headers: `GET /hello` is answered by the filter itself (200, headers `hello: World` and
//! `powered-by: proxy-wasm`, body `Hello, World!`); any other request reaches the upstream
//! unchanged. Every request and response header is logged.
//!
//! Written on meshplug's SDK to behave as the public proxy-wasm SDK's `http_headers` example does
//! (`../shared/compat/README.md`).

use std::sync::Arc;

use meshplug_sdk::{
    Action, Error, FilterConfig, Headers, Host, HttpFilter, LocalReply, LogLevel, Metrics,
};
use serde::Deserialize;

/// No settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

/// The (empty) configuration.
#[derive(Debug)]
pub struct Config;

impl FilterConfig for Config {
    const NAME: &'static str = "hello-headers";
    type Settings = Settings;

    fn build(_settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self)
    }
}

/// The filter for one request.
#[derive(Debug)]
pub struct HelloHeaders;

fn log_all<H: Host>(host: &H, map: Headers, what: &str) {
    for (name, value) in host.headers(map) {
        host.log(LogLevel::Info, &format!("{what} header: <{name}: {value}>"));
    }
}

impl HttpFilter for HelloHeaders {
    type Config = Config;

    fn new(_config: &Arc<Config>) -> Self {
        Self
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        log_all(host, Headers::Request, "request");
        match host.header(Headers::Request, ":path").as_deref() {
            Some("/hello") => Action::Reply(LocalReply {
                status: 200,
                headers: vec![
                    ("hello".into(), "World".into()),
                    ("powered-by".into(), "proxy-wasm".into()),
                ],
                body: b"Hello, World!\n".to_vec(),
                details: "hello_headers",
            }),
            _ => Action::Continue,
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        log_all(host, Headers::Response, "response");
        Action::Continue
    }
}

meshplug_sdk::export_filter!(HelloHeaders);

#[cfg(test)]
mod tests;
