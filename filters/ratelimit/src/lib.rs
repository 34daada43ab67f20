//! `ratelimit`: a local token-bucket rate limit for Envoy, keyed by a request header, built with
//! meshplug's SDK as `ratelimit.wasm` and `libratelimit.so`.
//!
//! Each key (the value of `key_header`; requests without it share one bucket) gets `capacity`
//! tokens, refilled at `refill_per_second`. A request that finds its bucket empty gets 429 with
//! `retry-after` (whole seconds). Allowed responses carry `x-ratelimit-remaining`.
//!
//! Buckets live in the filter configuration. As a `.so` they are shared by every worker thread
//! of the proxy; as `.wasm` each worker's VM has its own, so with N workers a key may get up to N
//! times the burst. Run `--concurrency 1` or use the `.so` when the exact limit matters.

// A filter runs inside every proxy: it answers errors, it never panics on purpose.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)
)]

pub mod bucket;

use std::sync::{Arc, Mutex, PoisonError};

use meshplug_sdk::{
    Action, Counter, Error, FilterConfig, Headers, Host, HttpFilter, LocalReply, Metrics,
};
use serde::Deserialize;

use bucket::{Buckets, Shape, Verdict};

/// The configuration, as JSON: `{"key_header": "x-api-key", "capacity": 10,
/// "refill_per_second": 5, "max_keys": 10000}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatelimitSettings {
    /// The header whose value keys the bucket (default `x-api-key`).
    #[serde(default = "default_key_header")]
    pub key_header: String,
    /// Burst size, at least 1 (default 100).
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Tokens per second, at least 0 (0: the burst is all there is; default 100).
    #[serde(default = "default_refill")]
    pub refill_per_second: f64,
    /// At most this many keys are tracked (default 10000).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

fn default_key_header() -> String {
    "x-api-key".into()
}

fn default_capacity() -> u32 {
    100
}

fn default_refill() -> f64 {
    100.0
}

fn default_max_keys() -> usize {
    10_000
}

/// The loaded configuration and its buckets.
#[derive(Debug)]
pub struct RatelimitConfig {
    key_header: String,
    buckets: Mutex<Buckets>,
    limited: Option<Counter>,
}

impl FilterConfig for RatelimitConfig {
    const NAME: &'static str = "ratelimit";
    type Settings = RatelimitSettings;

    fn build(settings: RatelimitSettings, metrics: &mut dyn Metrics) -> Result<Self, Error> {
        let fail = |reason: &str| Err(Error::config(Self::NAME, reason));
        let key_header = settings.key_header.trim().to_ascii_lowercase();
        if key_header.is_empty() {
            return fail("key_header must not be empty");
        }
        if settings.capacity == 0 {
            return fail("capacity must be at least 1");
        }
        if !settings.refill_per_second.is_finite() || settings.refill_per_second < 0.0 {
            return fail("refill_per_second must be a number >= 0");
        }
        if settings.max_keys == 0 {
            return fail("max_keys must be at least 1");
        }
        let shape = Shape {
            capacity: f64::from(settings.capacity),
            refill_per_second: settings.refill_per_second,
        };
        Ok(Self {
            key_header,
            buckets: Mutex::new(Buckets::new(shape, settings.max_keys)),
            limited: metrics.counter("ratelimit_limited").ok(),
        })
    }
}

/// One request's filter.
#[derive(Debug)]
pub struct Ratelimit {
    config: Arc<RatelimitConfig>,
    remaining: Option<u64>,
}

impl HttpFilter for Ratelimit {
    type Config = RatelimitConfig;

    fn new(config: &Arc<RatelimitConfig>) -> Self {
        Self {
            config: Arc::clone(config),
            remaining: None,
        }
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let key = host
            .header(Headers::Request, &self.config.key_header)
            .unwrap_or_default();
        let now = host.now_millis();
        let verdict = self
            .config
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(&key, now);
        match verdict {
            Verdict::Allowed { remaining } => {
                self.remaining = Some(remaining);
                Action::Continue
            }
            Verdict::Limited { retry_after_s } => {
                if let Some(limited) = self.config.limited {
                    host.increment(limited, 1);
                }
                Action::Reply(
                    LocalReply::text(429, "rate limited\n", "ratelimit_over_limit")
                        .with_header("retry-after", retry_after_s.to_string()),
                )
            }
        }
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        if let Some(remaining) = self.remaining {
            let _ = host.set_header(
                Headers::Response,
                "x-ratelimit-remaining",
                &remaining.to_string(),
            );
        }
        Action::Continue
    }
}

meshplug_sdk::export_filter!(Ratelimit);

#[cfg(test)]
mod tests;
