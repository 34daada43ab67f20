//! Cases for `meshplug test`: the fixture format ([`Fixture`]'s request, upstream answer and
//! [`Expectation`]) extended with what only a real Envoy has: which listener, HTTP/2, fake
//! upstream clusters, Envoy stats deltas, and steps (send, swap the filter, load during a
//! swap). One format, owned here with the fixtures; a case is a fixture with more fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fixture::{Expectation, FixtureRequest, UpstreamResponse};

/// A cases file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// Clusters of the Envoy configuration answered by fakes, by cluster name: what each
    /// answers (a case's `upstream` overrides it for that case).
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamResponse>,
    /// The configuration each filter under test starts with, by filter name: JSON (a
    /// mapping) or text (a string). Default: the filter's inline configuration in the Envoy
    /// configuration, else `{}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, serde_json::Value>,
    /// The cases, run in order, each from the filters as given on the command line.
    pub cases: Vec<Case>,
}

/// One case: a request and what must come out, or steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A name for the report.
    pub name: String,
    /// The listener the requests go to (its `name`); default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    /// Speak HTTP/2 (prior knowledge) instead of HTTP/1.1.
    #[serde(default)]
    pub http2: bool,
    /// What every fake upstream answers in this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamResponse>,
    /// The request of a one-request case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<FixtureRequest>,
    /// What the one request must get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// Envoy stats that must move by exactly this much over the one request (counters,
    /// e.g. `http.ingress.downstream_rq_4xx: 1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, i64>,
    /// Text Envoy's log must show while the one request is handled (see [`Send::log`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// Steps instead of one request, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// A request and what it must get.
    Send(Send),
    /// The filter changes to another build or configuration; the step ends once Envoy runs
    /// it (waited for through the control plane, not by sleeping).
    Swap(Swap),
    /// Many requests over several connections, each of which must get a 2xx, with a swap in
    /// the middle when one is given.
    Load(Load),
}

/// A request step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    /// The request.
    #[serde(default)]
    pub request: FixtureRequest,
    /// What it must get.
    #[serde(default)]
    pub expect: Expectation,
    /// Stats deltas over this request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, i64>,
    /// Text each of which a line Envoy logs while handling this request must contain (a
    /// filter's own log lines included, at Envoy's `info` level).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// A swap step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swap {
    /// The filter (its name in the Envoy configuration and on the command line).
    pub filter: String,
    /// Another build (`.wasm` or `.so`), relative to the cases file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Another configuration: JSON (a mapping) or text (a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// A load step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// How many requests in all.
    pub requests: u32,
    /// Over how many connections at once.
    #[serde(default = "one")]
    pub connections: u32,
    /// The request each sends.
    #[serde(default)]
    pub request: FixtureRequest,
    /// A swap made once the load runs; the step waits for both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<Swap>,
}

fn one() -> u32 {
    1
}

impl Case {
    /// The steps this case runs: its `steps`, or its one request as a send.
    pub fn steps(&self) -> Vec<Step> {
        if !self.steps.is_empty() {
            return self.steps.clone();
        }
        vec![Step::Send(Send {
            request: self.request.clone().unwrap_or_default(),
            expect: self.expect.clone().unwrap_or_default(),
            stats: self.stats.clone(),
            log: self.log.clone(),
        })]
    }

    /// What is wrong with the case as written, if anything.
    pub fn check(&self) -> Result<(), String> {
        let one_request = self.request.is_some()
            || self.expect.is_some()
            || !self.stats.is_empty()
            || !self.log.is_empty();
        if one_request && !self.steps.is_empty() {
            return Err(format!(
                "case {:?}: give request/expect/stats or steps, not both",
                self.name
            ));
        }
        for step in &self.steps {
            if let Step::Load(load) = step
                && (load.requests == 0 || load.connections == 0)
            {
                return Err(format!(
                    "case {:?}: a load needs at least one request and one connection",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// A configuration as a case gives it: a string is the text itself, anything else its JSON.
pub fn config_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
