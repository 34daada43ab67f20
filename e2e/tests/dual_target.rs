//! The same filters, built once as `.wasm` and once as `.so` from the same crates, answer one
//! table of requests identically through a real Envoy: allowed, denied, rate-limited and
//! rewritten cases. Each run is a fresh mesh that deploys only one kind.
//!
//! The rate-limit rows count one bucket exactly. A `.so` shares its buckets across Envoy's
//! workers, so that mesh runs two; each worker's Wasm VM has its own buckets (the documented
//! limit of `ratelimit.wasm`), so the Wasm mesh runs one worker: with two, a request that
//! arrives on a fresh connection may land on the other VM and find a full bucket.

use e2e::Mesh;
use e2e::mesh::Answer;
use e2e::paths::filter_artifact;
use meshplug::store::sha256_hex;

const FILTERS: [&str; 3] = ["authz", "ratelimit", "header-rewrite"];

const CONFIGS: [(&str, &str); 3] = [
    (
        "authz",
        r#"{"api_keys": ["k1", "k2"], "bearer_tokens": ["t1"],
            "rules": [{"prefix": "/public", "anonymous": true},
                      {"prefix": "/admin", "allow": ["k1"]}]}"#,
    ),
    (
        "ratelimit",
        r#"{"key_header": "x-client", "capacity": 2, "refill_per_second": 0}"#,
    ),
    (
        "header-rewrite",
        r#"{"request": {"set": {"x-env": "prod"}, "remove": ["x-drop"]},
            "response": {"set": {"cache-control": "no-store"}, "add": {"x-rewritten": "yes"}}}"#,
    ),
];

/// One request and what must come back. Rows run in order (the rate-limit rows share a bucket).
struct Row {
    case: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    present: &'static [(&'static str, &'static str)],
    absent: &'static [&'static str],
    body_contains: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        case: "allowed by API key, tagged, through every filter",
        path: "/orders",
        headers: &[
            ("x-api-key", "k1"),
            ("x-client", "c-1"),
            ("x-drop", "1"),
            ("x-env", "dev"),
        ],
        status: 200,
        present: &[
            ("x-meshplug-filter", "authz/dev"),
            ("x-ratelimit-remaining", "1"),
            ("echo-x-env", "prod"),
            ("cache-control", "no-store"),
            ("x-rewritten", "yes"),
        ],
        absent: &["echo-x-drop"],
        body_contains: "upstream ok",
    },
    Row {
        case: "allowed by bearer token",
        path: "/orders",
        headers: &[("authorization", "Bearer t1"), ("x-client", "c-2")],
        status: 200,
        present: &[("x-meshplug-filter", "authz/dev")],
        absent: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "denied: no credential",
        path: "/orders",
        headers: &[("x-client", "c-3")],
        status: 401,
        present: &[
            ("www-authenticate", "Bearer realm=\"meshplug\""),
            ("x-meshplug-filter", "authz/dev"),
        ],
        absent: &["echo-x-client", "x-rewritten"],
        body_contains: "missing API key",
    },
    Row {
        case: "denied: unknown key",
        path: "/orders",
        headers: &[("x-api-key", "nope")],
        status: 403,
        present: &[],
        absent: &["echo-x-api-key"],
        body_contains: "API key not allowed",
    },
    Row {
        case: "denied: key not allowed on this path",
        path: "/admin/users",
        headers: &[("x-api-key", "k2")],
        status: 403,
        present: &[],
        absent: &[],
        body_contains: "not allowed on this path",
    },
    Row {
        case: "anonymous path",
        path: "/public/status",
        headers: &[("x-client", "c-4")],
        status: 200,
        present: &[("cache-control", "no-store")],
        absent: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limit: first of the burst",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 200,
        present: &[("x-ratelimit-remaining", "1")],
        absent: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limit: second of the burst",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 200,
        present: &[("x-ratelimit-remaining", "0")],
        absent: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limited: 429 with retry-after",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 429,
        present: &[("retry-after", "3600")],
        absent: &["echo-x-client", "x-rewritten"],
        body_contains: "rate limited",
    },
];

fn check(kind: &str, row: &Row, answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.status != row.status {
        problems.push(format!("status {} != {}", answer.status, row.status));
    }
    for (name, value) in row.present {
        if answer.header(name) != Some(value) {
            problems.push(format!("{name}: {:?} != {value:?}", answer.header(name)));
        }
    }
    for name in row.absent {
        if answer.header(name).is_some() {
            problems.push(format!("{name} should be absent"));
        }
    }
    if !answer.body.contains(row.body_contains) {
        problems.push(format!(
            "body {:?} lacks {:?}",
            answer.body, row.body_contains
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("[{kind}] {}: {p}", row.case))
        .collect()
}

/// Starts a mesh that runs `kind`, deploys the three filters built that way, runs the table.
async fn run_table(kind: &str) -> Vec<String> {
    let mut mesh = Mesh::start_control_plane(&["--prefer-kind", kind])
        .await
        .expect("control plane starts");
    mesh.envoy_workers = if kind == "native" { 2 } else { 1 };
    mesh.add_envoy("envoy-1", "edge")
        .await
        .expect("envoy starts");
    for (name, config) in CONFIGS {
        mesh.publish_config(name, config).await.expect("config");
    }
    for name in FILTERS {
        let file = if kind == "native" {
            format!("lib{name}.so")
        } else {
            format!("{name}.wasm")
        };
        let source = filter_artifact(&file).expect("filters built (make filters)");
        let sha = sha256_hex(&std::fs::read(&source).expect("read"));
        mesh.publish_copy(&source, &file).expect("publish");
        mesh.wait_until_acked("envoy-1", name, &sha).await;
        let plugin = mesh.control_plane.plugin(name).await.expect("plugin");
        assert_eq!(plugin["artifact"]["kind"], kind, "{plugin}");
    }
    let mut problems = Vec::new();
    for row in ROWS {
        let answer = mesh.get(0, row.path, row.headers).await.expect("request");
        problems.extend(check(kind, row, &answer));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fixtures_pass_as_wasm_and_as_a_dynamic_module() {
    let mut problems = run_table("wasm").await;
    problems.extend(run_table("native").await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
