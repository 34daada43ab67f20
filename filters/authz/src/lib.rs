//! `authz`: an API-key and bearer-token HTTP filter for Envoy, built with meshplug's SDK as
//! `authz.wasm` and `libauthz.so`.
//!
//! A request without a credential gets 401, one with a credential that is not configured gets
//! 403, and per-path rules (longest prefix wins) can open a path to anonymous callers or narrow
//! it to some credentials (403 for the others). Allowed responses, and every local reply, carry
//! `x-meshplug-filter: authz/<build>`, so a caller can see which build served it.
//!
//! The decision is plain Rust in [`policy`], tested without any host; [`Authz`] wires it to the
//! SDK's [`Host`].

// A filter runs inside every proxy: it answers errors, it never panics on purpose.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)
)]

pub mod policy;

use std::sync::Arc;

use meshplug_sdk::{Action, Error, FilterConfig, Headers, Host, HttpFilter, LocalReply, Metrics};

use policy::{AuthzPolicy, AuthzSettings, Decision, check, credential, decide};

/// The build this filter reports, set at compile time by `MESHPLUG_BUILD_ID` (default `dev`).
pub const BUILD_ID: &str = match option_env!("MESHPLUG_BUILD_ID") {
    Some(id) => id,
    None => "dev",
};

/// The response header that names the filter and its build.
pub const FILTER_HEADER: &str = "x-meshplug-filter";

/// The value of [`FILTER_HEADER`].
pub fn filter_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| format!("authz/{BUILD_ID}"))
}

/// The loaded configuration.
#[derive(Debug)]
pub struct AuthzConfig {
    /// The checked policy.
    pub policy: AuthzPolicy,
    denied: Option<meshplug_sdk::Counter>,
}

impl FilterConfig for AuthzConfig {
    const NAME: &'static str = "authz";
    type Settings = AuthzSettings;

    fn build(settings: AuthzSettings, metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            policy: check(settings)?,
            denied: metrics.counter("authz_denied").ok(),
        })
    }
}

/// One request's filter.
#[derive(Debug)]
pub struct Authz {
    config: Arc<AuthzConfig>,
    allowed: bool,
}

impl HttpFilter for Authz {
    type Config = AuthzConfig;

    fn new(config: &Arc<AuthzConfig>) -> Self {
        Self {
            config: Arc::clone(config),
            allowed: false,
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let policy = &self.config.policy;
        // Each header read is a host call on the request path: read only what decides, and
        // the key without a copy where the target lends it.
        let decision = host.with_header(Headers::Request, &policy.header, |key| {
            let authorization = match key.is_some_and(|k| !k.trim().is_empty()) {
                true => None, // a key wins over a bearer token
                false => host.header(Headers::Request, "authorization"),
            };
            let path = match policy.rules.is_empty() {
                true => String::new(), // no per-path rule to find
                false => host.header(Headers::Request, ":path").unwrap_or_default(),
            };
            decide(policy, &path, credential(key, authorization.as_deref()))
        });
        match decision {
            Decision::Allow => {
                self.allowed = true;
                Action::Continue
            }
            Decision::Deny {
                status,
                body,
                details,
            } => {
                if let Some(denied) = self.config.denied {
                    host.increment(denied, 1);
                }
                let mut reply = LocalReply::text(status, body, details)
                    .with_header(FILTER_HEADER, filter_tag());
                if status == 401 && policy.bearer {
                    reply = reply.with_header("www-authenticate", "Bearer realm=\"meshplug\"");
                }
                Action::Reply(reply)
            }
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        if self.allowed {
            let _ = host.set_header(Headers::Response, FILTER_HEADER, filter_tag());
        }
        Action::Continue
    }
}

meshplug_sdk::export_filter!(Authz);

#[cfg(test)]
mod tests;
