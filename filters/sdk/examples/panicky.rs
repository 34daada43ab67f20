//! A deliberately faulty filter for the native panic test (`e2e/tests/native_panic.rs`): it
//! panics on requests whose path starts with the configured `panic_on` prefix, and tags every
//! other response `x-meshplug-filter: panicky`. Built by `make test-filters` as a `.so`.

use std::sync::Arc;

use meshplug_sdk::{Action, Error, FilterConfig, Headers, Host, HttpFilter, Metrics};

/// `{"panic_on": "/boom"}`.
#[derive(Debug, serde::Deserialize)]
pub struct Settings {
    panic_on: String,
}

/// The loaded configuration.
#[derive(Debug)]
pub struct Config {
    panic_on: String,
}

impl FilterConfig for Config {
    const NAME: &'static str = "panicky";
    type Settings = Settings;

    fn build(settings: Settings, _metrics: &mut dyn Metrics) -> Result<Self, Error> {
        Ok(Self {
            panic_on: settings.panic_on,
        })
    }
}

/// One request's filter.
#[derive(Debug)]
pub struct Panicky(Arc<Config>);

impl HttpFilter for Panicky {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self(Arc::clone(config))
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let path = host.header(Headers::Request, ":path").unwrap_or_default();
        assert!(
            !path.starts_with(&self.0.panic_on),
            "panicky filter met {path}"
        );
        Action::Continue
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let _ = host.set_header(Headers::Response, "x-meshplug-filter", "panicky");
        Action::Continue
    }
}

meshplug_sdk::export_filter!(Panicky);
