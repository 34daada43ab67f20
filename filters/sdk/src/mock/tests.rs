use std::sync::Arc;

use serde::Deserialize;

use super::{Harness, Request};
use crate::{Action, Counter, Error, FilterConfig, Headers, Host, HttpFilter, LocalReply, Metrics};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    deny_path: Option<String>,
}

#[derive(Debug)]
struct Config {
    deny_path: Option<String>,
    denied: Counter,
}

impl FilterConfig for Config {
    const NAME: &'static str = "probe";
    type Settings = Settings;

    fn build(settings: Settings, metrics: &mut dyn Metrics) -> Result<Self, Error> {
        if settings.deny_path.as_deref() == Some("") {
            return Err(Error::config(Self::NAME, "deny_path must not be empty"));
        }
        Ok(Self {
            deny_path: settings.deny_path,
            denied: metrics.counter("probe_denied")?,
        })
    }
}

struct Probe(Arc<Config>);

impl HttpFilter for Probe {
    type Config = Config;

    fn new(config: &Arc<Config>) -> Self {
        Self(Arc::clone(config))
    }

    fn on_request_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let path = host.header(Headers::Request, ":path");
        if path.is_some() && path == self.0.deny_path {
            host.increment(self.0.denied, 1);
            return Action::Reply(LocalReply::text(403, "no\n", "probe_denied"));
        }
        let _ = host.set_header(Headers::Request, "x-probe", "seen");
        Action::Continue
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let _ = host.add_header(Headers::Response, "x-probe", "done");
        Action::Continue
    }
}

#[test]
fn empty_configuration_means_defaults() {
    let mut harness = Harness::<Probe>::new("").expect("empty config is {}");
    let exchange = harness.send(&Request::get("/anything"));
    assert_eq!(exchange.status(), 200);
    assert_eq!(exchange.upstream_header("x-probe").as_deref(), Some("seen"));
    assert_eq!(exchange.response_header("x-probe").as_deref(), Some("done"));
}

#[test]
fn bad_json_and_refused_settings_name_the_filter() {
    let unknown = Harness::<Probe>::new(r#"{"deny": "/x"}"#).expect_err("unknown field");
    assert!(
        unknown
            .to_string()
            .starts_with("invalid probe configuration: unknown field")
    );
    let refused = Harness::<Probe>::new(r#"{"deny_path": ""}"#).expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "invalid probe configuration: deny_path must not be empty"
    );
    let broken = Harness::<Probe>::new("{").expect_err("truncated JSON");
    assert!(matches!(
        broken,
        Error::Config {
            filter: "probe",
            ..
        }
    ));
}

#[test]
fn local_reply_stops_the_request_and_counts() {
    let mut harness = Harness::<Probe>::new(r#"{"deny_path": "/x"}"#).expect("config");
    let denied = harness.send(&Request::get("/x"));
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.upstream_headers, None);
    assert_eq!(
        denied.response_header("content-type").as_deref(),
        Some("text/plain")
    );
    harness.send(&Request::get("/y"));
    assert_eq!(harness.host.counters.get("probe_denied"), Some(&1));
    assert_eq!(
        harness.host.counters.get("meshplug_heartbeat_probe"),
        Some(&2)
    );
}

/// Holds each direction until its end, to show the harness's buffering and stall rules.
struct Holder;

impl HttpFilter for Holder {
    type Config = Config;

    fn new(_config: &Arc<Config>) -> Self {
        Self
    }

    fn on_request_headers<H: Host>(&mut self, _host: &mut H, end_of_stream: bool) -> Action {
        match end_of_stream {
            true => Action::Stop,
            false => Action::Continue,
        }
    }

    fn on_request_body<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Stop;
        }
        let whole = host.body(crate::Body::Request);
        let _ = host.set_body(crate::Body::Request, &whole.to_ascii_uppercase());
        Action::Continue
    }

    fn on_response_headers<H: Host>(&mut self, host: &mut H, _end_of_stream: bool) -> Action {
        let _ = host.add_header(Headers::Response, "x-holder", "saw the response");
        Action::Continue
    }
}

#[test]
fn held_chunks_come_back_whole_and_a_rewrite_reaches_the_upstream() {
    let mut harness = Harness::<Holder>::new("").expect("config");
    let exchange = harness.send(&Request::post("/", "abcdefg").chunked(2));
    assert_eq!(exchange.upstream_body, b"ABCDEFG");
    assert!(!exchange.stalled);
}

#[test]
fn a_direction_stopped_for_good_stalls() {
    let mut harness = Harness::<Holder>::new("").expect("config");
    let exchange = harness.send(&Request::get("/"));
    assert!(
        exchange.stalled,
        "headers-only request stopped and never resumed"
    );
    assert_eq!((exchange.status(), exchange.upstream_headers), (0, None));
}

#[test]
fn a_filter_whose_request_never_ran_sees_no_response() {
    let mut harness = Harness::<Holder>::new("").expect("config");
    let earlier = LocalReply::text(401, "who are you\n", "earlier_filter");
    let exchange = harness.earlier_filter_replied(&earlier);
    assert_eq!(exchange.status(), 401);
    assert_eq!(exchange.response_header("x-holder"), None);
}
