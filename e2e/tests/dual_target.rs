//! The same filters, built once as `.wasm` and once as `.so` from the same crates, answer one
//! table of requests identically through a real Envoy: allowed, denied, rate-limited and
//! rewritten cases, a response body rewritten whole (`body-redaction`), a request held for a
//! callout to a declared cluster (`callout-auth`), and a request trailer read by a filter
//! (`stream-facts`). Each run is a fresh mesh that deploys only one kind.
//!
//! The rate-limit rows count one bucket exactly. A `.so` shares its buckets across Envoy's
//! workers, so that mesh runs two; each worker's Wasm VM has its own buckets (the documented
//! limit of `ratelimit.wasm`), so the Wasm mesh runs one worker: with two, a request that
//! arrives on a fresh connection may land on the other VM and find a full bucket.

use e2e::Mesh;
use e2e::compat::{cluster_manifest, example_build, example_fixtures_line};
use e2e::composed::Ads;
use e2e::mesh::Answer;
use e2e::paths::filter_artifact;
use e2e::raw_http;
use e2e::upstream::Upstream;
use meshplug::store::sha256_hex;

const FILTERS: [&str; 3] = ["authz", "ratelimit", "header-rewrite"];

/// The SDK's examples in the second table, as plugins of a composed mesh, in chain order.
const EXAMPLES: [(&str, &str); 3] = [
    ("callout-auth", "{paths: [/checked]}"),
    ("body-redaction", "{}"),
    ("stream-facts", "{}"),
];

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
    /// Request trailers: sent over a raw HTTP/1.1 connection, chunked.
    trailers: &'static [(&'static str, &'static str)],
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
        trailers: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "allowed by bearer token",
        path: "/orders",
        headers: &[("authorization", "Bearer t1"), ("x-client", "c-2")],
        status: 200,
        present: &[("x-meshplug-filter", "authz/dev")],
        absent: &[],
        trailers: &[],
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
        trailers: &[],
        body_contains: "missing API key",
    },
    Row {
        case: "denied: unknown key",
        path: "/orders",
        headers: &[("x-api-key", "nope")],
        status: 403,
        present: &[],
        absent: &["echo-x-api-key"],
        trailers: &[],
        body_contains: "API key not allowed",
    },
    Row {
        case: "denied: key not allowed on this path",
        path: "/admin/users",
        headers: &[("x-api-key", "k2")],
        status: 403,
        present: &[],
        absent: &[],
        trailers: &[],
        body_contains: "not allowed on this path",
    },
    Row {
        case: "anonymous path",
        path: "/public/status",
        headers: &[("x-client", "c-4")],
        status: 200,
        present: &[("cache-control", "no-store")],
        absent: &[],
        trailers: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limit: first of the burst",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 200,
        present: &[("x-ratelimit-remaining", "1")],
        absent: &[],
        trailers: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limit: second of the burst",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 200,
        present: &[("x-ratelimit-remaining", "0")],
        absent: &[],
        trailers: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "rate limited: 429 with retry-after",
        path: "/orders",
        headers: &[("x-api-key", "k1"), ("x-client", "burst")],
        status: 429,
        present: &[("retry-after", "3600")],
        absent: &["echo-x-client", "x-rewritten"],
        trailers: &[],
        body_contains: "rate limited",
    },
];

/// Rows for the examples' mesh: bodies, callouts and trailers.
const EXAMPLE_ROWS: &[Row] = &[
    Row {
        case: "a response body with a secret is replaced whole",
        path: "/secret",
        headers: &[("x-client", "c-6")],
        status: 200,
        present: &[],
        absent: &["content-length", "powered-by"],
        trailers: &[],
        body_contains: "Original message body (14 bytes) redacted.",
    },
    Row {
        case: "a request held for a callout, let through by its answer",
        path: "/checked/orders",
        headers: &[("x-client", "c-7")],
        status: 200,
        present: &[("powered-by", "proxy-wasm")],
        absent: &[],
        trailers: &[],
        body_contains: "upstream ok",
    },
    Row {
        case: "a request trailer is read by the filter",
        path: "/orders",
        headers: &[("x-client", "c-8")],
        status: 200,
        present: &[("x-facts-trailer", "c0ffee"), ("x-facts-state", "seen")],
        absent: &["powered-by"],
        body_contains: "upstream ok",
        trailers: &[("x-checksum", "c0ffee")],
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
    problems.extend(run_rows(&mesh, kind, ROWS).await);
    problems
}

/// Sends each row (over a raw connection when it has trailers) and checks the answer.
async fn run_rows(mesh: &Mesh, kind: &str, rows: &[Row]) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows {
        let answer = match row.trailers.is_empty() {
            true => mesh.get(0, row.path, row.headers).await.expect("request"),
            false => {
                let to = mesh.envoys[0].listener;
                raw_http::send(to, ("POST", row.path), row.headers, "body", row.trailers)
                    .await
                    .expect("request")
                    .into_answer()
            }
        };
        problems.extend(check(kind, row, &answer));
    }
    problems
}

/// Starts a composed mesh whose plugins are the [`EXAMPLES`] built as `kind` (as `.wasm`, each
/// example's shipped fixtures run in the pre-flight first), with cluster `httpbin` answering
/// `0` for `callout-auth`, and runs [`EXAMPLE_ROWS`].
async fn run_examples(kind: &str) -> Vec<String> {
    let native = kind == "native";
    let callout_target = Upstream::start_answering("0")
        .await
        .expect("callout target");
    let mut mesh = Mesh::start_composed(&[])
        .await
        .expect("control plane starts");
    let cluster = cluster_manifest("httpbin", callout_target.addr);
    mesh.write_manifest("mesh", "httpbin.yaml", &cluster)
        .expect("cluster");
    for (priority, (name, config)) in EXAMPLES.iter().enumerate() {
        let (path, file) = example_build(name, native).expect("filters built (make filters)");
        mesh.publish_copy(&path, &file).expect("publish");
        let callouts = match *name {
            "callout-auth" => "  callouts: [httpbin]\n",
            _ => "",
        };
        let manifest = format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\n\
             spec:\n  artifact: {name}\n  rollout: immediate\n  priority: {}\n{callouts}  \
             config: {config}\n{}",
            priority * 10,
            example_fixtures_line(name).expect("fixtures"),
        );
        mesh.write_manifest("plugins", &format!("{name}.yaml"), &manifest)
            .expect("plugin");
    }
    mesh.envoy_workers = if native { 2 } else { 1 };
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await
        .expect("envoy starts");
    let chain: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    mesh.wait_for_chain(0, &chain).await;
    for (name, _) in EXAMPLES {
        let plugin = mesh.control_plane.plugin(name).await.expect("plugin");
        assert_eq!(plugin["artifact"]["kind"], kind, "{plugin}");
    }
    run_rows(&mesh, kind, EXAMPLE_ROWS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_examples_answer_alike_as_wasm_and_as_a_dynamic_module() {
    let mut problems = run_examples("wasm").await;
    problems.extend(run_examples("native").await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fixtures_pass_as_wasm_and_as_a_dynamic_module() {
    let mut problems = run_table("wasm").await;
    problems.extend(run_table("native").await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
