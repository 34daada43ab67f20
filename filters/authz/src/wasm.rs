//! The proxy-wasm adapter: reads the configuration and headers from the host, asks
//! [`crate::policy`], and acts. Host-call failures are logged, never unwrapped.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::policy::{AuthzConfig, Decision, decide, parse_config};
use crate::{FILTER_HEADER, filter_tag};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuthzRoot::default()) });
}}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct AuthzRoot {
    config: Option<Rc<AuthzConfig>>,
    heartbeat: Option<u32>,
}

/// Defines `meshplug_heartbeat_<filter>`, counted once per request the filter sees, so that
/// meshplug's rollout gate notices requests that bypass it.
fn define_heartbeat() -> Option<u32> {
    let filter = hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "authz".into());
    match hostcalls::define_metric(MetricType::Counter, &format!("meshplug_heartbeat_{filter}")) {
        Ok(id) => Some(id),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("authz: no heartbeat counter: {status:?}"),
            );
            None
        }
    }
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("authz: cannot read configuration: {status:?}"),
                );
                return false;
            }
        };
        match parse_config(&bytes) {
            Ok(config) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "authz {}: {} keys on {}",
                        filter_tag(),
                        config.api_keys.len(),
                        config.header
                    ),
                );
                self.config = Some(Rc::new(config));
                self.heartbeat = define_heartbeat();
                true
            }
            Err(err) => {
                log(LogLevel::Error, &err.to_string());
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        Some(Box::new(AuthzRequest {
            config,
            allowed: false,
            heartbeat: self.heartbeat,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthzRequest {
    config: Rc<AuthzConfig>,
    allowed: bool,
    heartbeat: Option<u32>,
}

impl Context for AuthzRequest {}

impl HttpContext for AuthzRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(metric) = self.heartbeat {
            let _ = hostcalls::increment_metric(metric, 1);
        }
        let key = hostcalls::get_map_value(MapType::HttpRequestHeaders, &self.config.header)
            .ok()
            .flatten();
        match decide(&self.config, key.as_deref()) {
            Decision::Allow => {
                self.allowed = true;
                Action::Continue
            }
            Decision::Deny { status, body } => {
                let tag = filter_tag();
                let headers = vec![
                    ("content-type", "text/plain"),
                    (FILTER_HEADER, tag.as_str()),
                ];
                if let Err(status) =
                    hostcalls::send_http_response(u32::from(status), headers, Some(body.as_bytes()))
                {
                    log(
                        LogLevel::Error,
                        &format!("authz: local reply failed: {status:?}"),
                    );
                }
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.allowed {
            let tag = filter_tag();
            if let Err(status) =
                hostcalls::set_map_value(MapType::HttpResponseHeaders, FILTER_HEADER, Some(&tag))
            {
                log(
                    LogLevel::Warn,
                    &format!("authz: cannot tag response: {status:?}"),
                );
            }
        }
        Action::Continue
    }
}
