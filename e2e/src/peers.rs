//! The filters `make bench` compares (`bench-filters`): each SDK filter as `.wasm` and `.so`,
//! the same `authz` check written straight on the proxy-wasm crate, and Envoy's built-in
//! filters doing the same jobs, each as an HTTP filter list for `envoy-config/bench-filter.yaml`.

use std::path::Path;

use crate::HarnessError;
use crate::paths::filter_artifact;

/// The key every benchmark request carries (an allowed one).
pub const API_KEY: &str = "bench-key";

/// One case: a filter list and the job it does.
#[derive(Debug, Clone)]
pub struct FilterCase {
    /// The job: `authz`, `header-rewrite` or `ratelimit`; empty for no filter.
    pub job: &'static str,
    /// What runs it: `no filter`, `SDK .wasm`, `built-in RBAC`, …
    pub name: &'static str,
    /// The HTTP filters in YAML flow style, each followed by a comma.
    pub filters: String,
}

const AUTHZ: &str = r#"{"api_keys": ["bench-key"]}"#;
const REWRITE: &str = r#"{"request": {"set": {"x-bench": "1"}, "remove": ["x-drop"]}, "response": {"set": {"x-frame-options": "DENY"}, "add": {"x-served-by": "meshplug"}}}"#;
const RATELIMIT: &str = r#"{"key_header": "x-api-key", "capacity": 1000000000, "refill_per_second": 1000000000, "max_keys": 10000}"#;

/// The `.wasm` at `path` as HTTP filter `name` configured with `config`, in YAML flow style,
/// followed by a comma.
pub fn wasm(name: &str, path: &Path, config: &str) -> String {
    format!(
        r#"{{ name: {name}, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: {{ name: {name}, vm_config: {{ vm_id: {name}, runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: "{}" }} }} }}, configuration: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: '{config}' }} }} }} }},"#,
        path.display()
    )
}

/// The `.so` at `path` as HTTP filter `name` configured with `config`, in YAML flow style,
/// followed by a comma.
pub fn native(name: &str, path: &Path, config: &str) -> String {
    format!(
        r#"{{ name: {name}, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter, dynamic_module_config: {{ module: {{ local: {{ filename: "{}" }} }} }}, filter_name: {name}, filter_config: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: '{config}' }} }} }},"#,
        path.display()
    )
}

/// RBAC allowing requests whose `x-api-key` is the key (403 otherwise). It cannot tell a
/// missing key (401) from a wrong one, nor tag the response.
fn rbac() -> String {
    format!(
        r#"{{ name: envoy.filters.http.rbac, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC, rules: {{ action: ALLOW, policies: {{ api-key: {{ permissions: [ {{ any: true }} ], principals: [ {{ header: {{ name: x-api-key, string_match: {{ exact: {API_KEY} }} }} }} ] }} }} }} }} }},"#
    )
}

/// Lua doing all of authz's job: 401, 403, and the tag on allowed responses.
fn lua() -> String {
    let code = r#"
local keys = { ["bench-key"] = true }
function envoy_on_request(handle)
  local key = handle:headers():get("x-api-key")
  if key == nil then
    handle:respond({[":status"] = "401", ["x-meshplug-filter"] = "authz/lua"}, "missing credential\n")
  elseif not keys[key] then
    handle:respond({[":status"] = "403", ["x-meshplug-filter"] = "authz/lua"}, "forbidden\n")
  end
end
function envoy_on_response(handle)
  handle:headers():replace("x-meshplug-filter", "authz/lua")
end
"#;
    let quoted = serde_json::to_string(code).unwrap_or_default();
    format!(
        r#"{{ name: envoy.filters.http.lua, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua, default_source_code: {{ inline_string: {quoted} }} }} }},"#
    )
}

/// Envoy's header mutation filter making header-rewrite's edits.
fn header_mutation() -> String {
    let set = |key: &str, value: &str, action: &str| {
        format!(
            r#"{{ append: {{ header: {{ key: {key}, value: "{value}" }}, append_action: {action} }} }}"#
        )
    };
    let request = format!(
        "{{ remove: x-drop }}, {}",
        set("x-bench", "1", "OVERWRITE_IF_EXISTS_OR_ADD")
    );
    let response = format!(
        "{}, {}",
        set("x-frame-options", "DENY", "OVERWRITE_IF_EXISTS_OR_ADD"),
        set("x-served-by", "meshplug", "APPEND_IF_EXISTS_OR_ADD")
    );
    format!(
        r#"{{ name: envoy.filters.http.header_mutation, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation, mutations: {{ request_mutations: [ {request} ], response_mutations: [ {response} ] }} }} }},"#
    )
}

/// Envoy's local rate limit with one bucket that never runs dry, and its rate-limit headers
/// on responses (keying buckets by a header takes route-level descriptors; ours keys by one).
fn local_ratelimit() -> String {
    let all = "{ runtime_key: rl, default_value: { numerator: 100, denominator: HUNDRED } }";
    format!(
        r#"{{ name: envoy.filters.http.local_ratelimit, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: bench, token_bucket: {{ max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s }}, filter_enabled: {all}, filter_enforced: {all}, enable_x_ratelimit_headers: DRAFT_VERSION_03 }} }},"#
    )
}

/// The job of the host-call cases: one proxy-wasm host call made [`CALLS`] times a request.
pub const HOST_CALLS: &str = "host call";

/// How many times a host-call case makes its call per request.
pub const CALLS: u32 = 100;

/// The host-call cases (`make bench-peers` builds `bench/hostcalls.wasm`): the module making
/// no call first, then each call [`CALLS`] times a request.
pub fn host_call_cases() -> Result<Vec<FilterCase>, HarnessError> {
    let module = filter_artifact("bench/hostcalls.wasm")?;
    let calls: [(&'static str, &str, u32); 6] = [
        ("no call", "none", 0),
        ("get_header", "get_header", CALLS),
        ("get_headers (whole map)", "get_headers", CALLS),
        ("set_header (response)", "set_header", CALLS),
        ("increment_metric", "increment_metric", CALLS),
        ("get_property (request.path)", "get_property", CALLS),
    ];
    Ok(calls
        .into_iter()
        .map(|(name, call, times)| FilterCase {
            job: HOST_CALLS,
            name,
            filters: wasm(
                "hostcalls",
                &module,
                &format!(r#"{{"call": "{call}", "times": {times}}}"#),
            ),
        })
        .collect())
}

/// The job of the floor cases: an SDK filter doing nothing, as `.wasm` and `.so`.
pub const FLOOR: &str = "floor";

/// The floor cases (`make bench-peers` builds `bench/noop.wasm` and `bench/libnoop.so`).
///
/// With `MESHPLUG_BENCH_FLOOR_BEFORE` naming a folder holding `noop.wasm` and `libnoop.so`
/// built from another commit, both are cases too ("... before"), measured in the same rounds:
/// what a change of the SDK costs every filter.
pub fn floor_cases() -> Result<Vec<FilterCase>, HarnessError> {
    let names = ["SDK .wasm doing nothing", "SDK .so doing nothing"];
    let mut cases: Vec<FilterCase> =
        sdk_builds(FLOOR, names, ("noop", "bench/", "noop"), "{}")?.into();
    if let Some(before) = std::env::var_os("MESHPLUG_BENCH_FLOOR_BEFORE") {
        let before = std::path::PathBuf::from(before);
        let case = |name, filters| FilterCase {
            job: FLOOR,
            name,
            filters,
        };
        cases.push(case(
            "SDK .wasm doing nothing, before",
            wasm("noop", &before.join("noop.wasm"), "{}"),
        ));
        cases.push(case(
            "SDK .so doing nothing, before",
            native("noop", &before.join("libnoop.so"), "{}"),
        ));
    }
    Ok(cases)
}

/// Filter `name` built with our SDK as `.wasm` and `.so` (`target/filters/{dir}{stem}.wasm`
/// and `{dir}lib{stem}.so`), configured with `config`: two cases named `names`.
fn sdk_builds(
    job: &'static str,
    names: [&'static str; 2],
    (name, dir, stem): (&str, &str, &str),
    config: &str,
) -> Result<[FilterCase; 2], HarnessError> {
    let wasm_case = wasm(
        name,
        &filter_artifact(&format!("{dir}{stem}.wasm"))?,
        config,
    );
    let native_case = native(
        name,
        &filter_artifact(&format!("{dir}lib{stem}.so"))?,
        config,
    );
    let case = |name, filters| FilterCase { job, name, filters };
    Ok([case(names[0], wasm_case), case(names[1], native_case)])
}

/// Every case, no filter first. The SDK builds come from `make filters`, the hand-written
/// peer and the builds without the heartbeat counter from `make bench-peers`
/// (`target/filters/bench/`).
pub fn cases() -> Result<Vec<FilterCase>, HarnessError> {
    const SDK: [&str; 2] = ["SDK .wasm", "SDK .so"];
    let case = |job, name, filters| FilterCase { job, name, filters };
    let raw = wasm(
        "authz-raw",
        &filter_artifact("bench/authz-raw.wasm")?,
        AUTHZ,
    );
    let mut all = vec![case("", "no filter", String::new())];
    all.extend(sdk_builds("authz", SDK, ("authz", "", "authz"), AUTHZ)?);
    all.push(case("authz", "hand-written proxy-wasm .wasm", raw));
    let no_heartbeat = ["SDK .wasm without heartbeat", "SDK .so without heartbeat"];
    let stem = ("authz", "bench/", "authz-noheartbeat");
    all.extend(sdk_builds("authz", no_heartbeat, stem, AUTHZ)?);
    all.push(case("authz", "built-in RBAC", rbac()));
    all.push(case("authz", "built-in Lua", lua()));
    let rewrite = ("header-rewrite", "", "header-rewrite");
    all.extend(sdk_builds("header-rewrite", SDK, rewrite, REWRITE)?);
    all.push(case(
        "header-rewrite",
        "built-in header mutation",
        header_mutation(),
    ));
    let ratelimit = ("ratelimit", "", "ratelimit");
    all.extend(sdk_builds("ratelimit", SDK, ratelimit, RATELIMIT)?);
    all.push(case(
        "ratelimit",
        "built-in local rate limit",
        local_ratelimit(),
    ));
    Ok(all)
}
