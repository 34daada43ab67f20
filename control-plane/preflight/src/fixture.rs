//! Request fixtures and what the filter must do with them. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One request driven through the filter, with the expected outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// A name for messages.
    pub name: String,
    /// The request.
    #[serde(default)]
    pub request: FixtureRequest,
    /// What the simulated upstream answers if the request gets there.
    #[serde(default)]
    pub upstream: UpstreamResponse,
    /// The answers to the filter's callouts (`proxy_http_call`, `proxy_grpc_call`), in the
    /// order it makes them. A callout with no answer here fails, as a timeout would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callouts: Vec<CalloutResponse>,
    /// Bodies are handed over in chunks of this many bytes, as Envoy hands over a body that
    /// arrives in several reads (each `on_*_body` call but the last without end of stream);
    /// without it, each body in one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<usize>,
    /// How many times the root context's timer fires (`proxy_on_tick`) before the request,
    /// when the filter set a tick period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ticks: u32,
    /// Properties the filter reads (`get_property`): `source.address`, `node.id`, dynamic
    /// metadata another filter set (`["metadata", "filter_metadata", "<namespace>", "<key>"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// What must come out.
    pub expect: Expectation,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One property as a fixture sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Property {
    /// Its path, one segment each (`["source", "address"]`).
    pub path: Vec<String>,
    /// Its value, as the filter reads the bytes.
    pub value: String,
}

impl Fixture {
    /// A fixture named `name` that drives the default request and expects nothing.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            request: FixtureRequest::default(),
            upstream: UpstreamResponse::default(),
            callouts: Vec::new(),
            chunk_size: None,
            ticks: 0,
            properties: Vec::new(),
            expect: Expectation::default(),
        }
    }
}

/// What one callout gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalloutResponse {
    /// The cluster the filter must call (checked when given).
    pub cluster: Option<String>,
    /// The HTTP status (`:status`) of an HTTP callout's answer.
    pub status: u16,
    /// Its headers (lower-case names); for a gRPC call, the initial metadata.
    pub headers: BTreeMap<String, String>,
    /// Its body; for a gRPC call, the response message's bytes.
    pub body: String,
    /// Its trailers.
    pub trailers: BTreeMap<String, String>,
    /// A gRPC call's status code (0 OK).
    pub grpc_status: u32,
    /// The call fails with no answer (a timeout or a reset): an HTTP callout's callback gets
    /// no headers and no body, a gRPC call closes with DEADLINE_EXCEEDED.
    pub timeout: bool,
}

impl Default for CalloutResponse {
    fn default() -> Self {
        Self {
            cluster: None,
            status: 200,
            headers: BTreeMap::new(),
            body: String::new(),
            trailers: BTreeMap::new(),
            grpc_status: 0,
            timeout: false,
        }
    }
}

impl CalloutResponse {
    /// A call that fails without an answer.
    pub fn failed() -> Self {
        Self {
            timeout: true,
            ..Self::default()
        }
    }
}

/// The request side of a fixture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixtureRequest {
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// Further headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// A body, if any.
    pub body: Option<String>,
}

impl FixtureRequest {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            path: path.to_string(),
            ..Self::default()
        }
    }

    /// `method path` with `body`.
    pub fn with_body(method: &str, path: &str, body: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            headers: BTreeMap::new(),
            body: Some(body.to_string()),
        }
    }

    /// The same request with header `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_string(), value.to_string());
        self
    }
}

impl Default for FixtureRequest {
    fn default() -> Self {
        Self {
            method: "GET".into(),
            path: "/".into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

/// The simulated upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: String,
}

impl Default for UpstreamResponse {
    fn default() -> Self {
        Self {
            status: 200,
            headers: BTreeMap::new(),
            body: "upstream ok\n".into(),
        }
    }
}

/// What a fixture expects. Only what is given is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectation {
    /// The status the client gets.
    pub status: Option<u16>,
    /// Whether the filter answered locally (`true`) or let the request through (`false`).
    pub local_reply: Option<bool>,
    /// Response headers that must be present with these values.
    pub headers: BTreeMap<String, String>,
    /// Response headers that must be absent.
    pub absent_headers: Vec<String>,
    /// Text the response body must contain.
    pub body_contains: Option<String>,
    /// The whole response body, exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A regular expression (Rust `regex` syntax) the response body must match somewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// JSON the response body must hold: every key given, with its value (recursively; an
    /// array must match element by element), other keys allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_json: Option<serde_json::Value>,
    /// Request headers the upstream must receive with these values.
    pub upstream_headers: BTreeMap<String, String>,
    /// Request headers the upstream must not receive.
    pub upstream_absent_headers: Vec<String>,
}

/// What actually happened to a fixture request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The status the client got.
    pub status: u16,
    /// Whether the filter answered locally.
    pub local_reply: bool,
    /// Response headers the client got.
    pub headers: BTreeMap<String, String>,
    /// Response body the client got.
    pub body: String,
    /// Request headers as the upstream got them (`None` when it never got the request).
    pub upstream_headers: Option<BTreeMap<String, String>>,
}

/// Parses a fixtures file: a JSON array of fixtures.
pub fn parse_fixtures(bytes: &[u8]) -> Result<Vec<Fixture>, String> {
    serde_json::from_slice(bytes).map_err(|err| format!("fixtures: {err}"))
}

/// Compares an outcome with what the fixture expects; the error says what differs.
#[cfg(feature = "sandbox")]
pub fn compare(expect: &Expectation, outcome: &Outcome) -> Result<(), String> {
    if let Some(status) = expect.status.filter(|s| *s != outcome.status) {
        return Err(format!("expected status {status}, got {}", outcome.status));
    }
    if let Some(local) = expect.local_reply.filter(|l| *l != outcome.local_reply) {
        let describe = |l: bool| {
            if l {
                "a local reply"
            } else {
                "the upstream's answer"
            }
        };
        return Err(format!(
            "expected {}, got {}",
            describe(local),
            describe(outcome.local_reply)
        ));
    }
    headers_match(
        "response header",
        &expect.headers,
        &expect.absent_headers,
        &outcome.headers,
    )?;
    if let Some(needle) = expect
        .body_contains
        .as_ref()
        .filter(|needle| !outcome.body.contains(needle.as_str()))
    {
        return Err(format!(
            "body {:?} does not contain {needle:?}",
            outcome.body
        ));
    }
    if let Some(body) = expect.body.as_ref().filter(|body| **body != outcome.body) {
        return Err(format!("body {:?}, expected {body:?}", outcome.body));
    }
    body_shape(expect, &outcome.body)?;
    if expect.upstream_headers.is_empty() && expect.upstream_absent_headers.is_empty() {
        return Ok(());
    }
    let Some(upstream) = &outcome.upstream_headers else {
        return Err("expected upstream headers, but the request never reached the upstream".into());
    };
    headers_match(
        "upstream request header",
        &expect.upstream_headers,
        &expect.upstream_absent_headers,
        upstream,
    )
}

/// The body against `body_regex` and `body_json`.
#[cfg(feature = "sandbox")]
fn body_shape(expect: &Expectation, body: &str) -> Result<(), String> {
    if let Some(pattern) = &expect.body_regex {
        let regex = regex::Regex::new(pattern)
            .map_err(|e| format!("body_regex {pattern:?} is not a regular expression: {e}"))?;
        if !regex.is_match(body) {
            return Err(format!("body {body:?} does not match /{pattern}/"));
        }
    }
    let Some(wanted) = &expect.body_json else {
        return Ok(());
    };
    let got: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("body {body:?} is not JSON ({e}); expected {wanted}"))?;
    json_holds(&got, wanted, "$").map_err(|at| format!("body {got} does not hold {wanted}: {at}"))
}

/// Whether `got` holds `wanted` (a subset: objects by key, arrays element by element); where
/// it does not, as a path.
#[cfg(feature = "sandbox")]
fn json_holds(got: &serde_json::Value, wanted: &serde_json::Value, at: &str) -> Result<(), String> {
    use serde_json::Value;
    match (got, wanted) {
        (Value::Object(got), Value::Object(wanted)) => {
            wanted.iter().try_for_each(|(key, value)| {
                let inner = format!("{at}.{key}");
                match got.get(key) {
                    Some(have) => json_holds(have, value, &inner),
                    None => Err(format!("{inner} is missing")),
                }
            })
        }
        (Value::Array(got), Value::Array(wanted)) if got.len() == wanted.len() => got
            .iter()
            .zip(wanted)
            .enumerate()
            .try_for_each(|(i, (have, value))| json_holds(have, value, &format!("{at}[{i}]"))),
        (got, wanted) if got == wanted => Ok(()),
        (got, wanted) => Err(format!("{at} is {got}, expected {wanted}")),
    }
}

#[cfg(feature = "sandbox")]
fn headers_match(
    what: &str,
    present: &BTreeMap<String, String>,
    absent: &[String],
    actual: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in present {
        match actual.get(name) {
            Some(got) if got == value => {}
            Some(got) => return Err(format!("{what} {name}: expected {value:?}, got {got:?}")),
            None => {
                return Err(format!(
                    "{what} {name}: expected {value:?}, but it is missing"
                ));
            }
        }
    }
    if let Some(name) = absent
        .iter()
        .find(|name| actual.contains_key(name.as_str()))
    {
        return Err(format!(
            "{what} {name} must be absent, got {:?}",
            actual[name.as_str()]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
