//! The SDK capabilities the compat twins do not show, through a real Envoy as `.wasm` and as
//! `.so`: the `stream-facts` example (`filters/examples/stream-facts`) in front of an upstream
//! that echoes each request and ends its answer with a trailer. One request with a chunked
//! body and a trailer, on a route with per-route settings in its metadata, then a second one:
//! properties, every value of a header, route metadata, request and response trailers, filter
//! state, dynamic metadata (`.so`; refused as `.wasm`) and shared data must all show. A third
//! request asks to be held on a timer for 50 ms: it reaches the upstream after at least that,
//! by the proxy's clock. A fourth and a fifth hold it on a unary gRPC call (ext_authz's
//! `Check`): to a test server, answered OK with a message; to a cluster nobody listens on,
//! unavailable (14). A sixth has its body replaced, upper-cased, on its way up. A seventh
//! carries header values that are not UTF-8: the filter reads past them and answers.

use std::net::SocketAddr;

use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::paths::{bootstrap_template, filter_artifact};
use e2e::peers;
use e2e::raw_http::{ECHO_TRAILER, RawAnswer, TrailerEcho, send, send_raw};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use tokio_stream::wrappers::TcpListenerStream;

/// An ext_authz service that allows everything.
struct AllowAll;

#[tonic::async_trait]
impl Authorization for AllowAll {
    async fn check(
        &self,
        _request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let ok = envoy_types::pb::google::rpc::Status::default();
        Ok(tonic::Response::new(CheckResponse {
            status: Some(ok),
            ..Default::default()
        }))
    }
}

/// Starts [`AllowAll`] on loopback; also returns a port nobody listens on.
async fn grpc_servers() -> (SocketAddr, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(AllowAll))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let down = closed.local_addr().expect("addr").port();
    drop(closed);
    (addr, down)
}

const CONFIG: &str = r#"{"grpc_clusters": ["grpc", "grpc-down"]}"#;

async fn envoy(
    native: bool,
    (upstream, grpc, down): (&TrailerEcho, SocketAddr, u16),
    dir: &std::path::Path,
) -> Envoy {
    let file = if native {
        "libstream-facts.so"
    } else {
        "stream-facts.wasm"
    };
    let path = filter_artifact(file).expect("make filters built the examples");
    let filter = match native {
        true => peers::native("stream-facts", &path, CONFIG),
        false => peers::wasm("stream-facts", &path, CONFIG),
    };
    let mut vars = meshplug::bootstrap::BootstrapVars::new();
    vars.insert("UPSTREAM_PORT", upstream.addr.port().to_string());
    vars.insert("GRPC_PORT", grpc.port().to_string());
    vars.insert("DOWN_PORT", down.to_string());
    vars.insert("FILTER", filter);
    let options = EnvoyOptions {
        node_id: format!("facts-{native}"),
        cluster: "sdk".into(),
        template: bootstrap_template("sdk-examples.yaml"),
        vars,
        workers: 2,
        on_host: None,
    };
    Envoy::start(dir, options).await.expect("envoy starts")
}

/// How long the filter held the request, as the upstream saw it (`x-facts-waited`).
fn waited(answer: &RawAnswer) -> Option<u64> {
    let line = answer
        .body
        .lines()
        .find(|l| l.starts_with("x-facts-waited: "))?;
    line.trim_start_matches("x-facts-waited: ")
        .trim()
        .parse()
        .ok()
}

/// What the filter reported of its gRPC call, as the upstream saw it.
fn grpc_answer(answer: &RawAnswer) -> Option<&str> {
    let line = answer
        .body
        .lines()
        .find(|l| l.starts_with("x-facts-grpc-answer: "))?;
    Some(line.trim_start_matches("x-facts-grpc-answer: ").trim())
}

/// What the upstream must have seen of the first two requests.
fn upstream_checks(first: &RawAnswer, second: &RawAnswer) -> Vec<(&'static str, bool)> {
    let saw = |text: &str| first.body.contains(text);
    vec![
        ("status 200", first.status == 200 && second.status == 200),
        ("source.address", saw("x-facts-source: 127.0.0.1:")),
        ("request.protocol", saw("x-facts-protocol: HTTP/1.1")),
        ("every value of x-multi", saw("x-facts-values: a,b")),
        ("every header", saw("x-facts-pairs: 2")),
        (
            "route metadata",
            saw("x-facts-greeting: hello from the route"),
        ),
        ("a request trailer written", saw("x-facts-checked: c0ffee")),
        (
            "no greeting off the route",
            !second.body.contains("x-facts-greeting"),
        ),
    ]
}

/// What the client must see of each request.
fn client_checks(native: bool, answers: [&RawAnswer; 7]) -> Vec<(&'static str, bool)> {
    let [first, second, held, ok, down, shout, raw] = answers;
    let metadata = if native { "yes" } else { "unsupported" };
    let first_says = |name: &str, value: &str| first.header(name) == Some(value);
    vec![
        (
            "a request trailer read",
            first_says("x-facts-trailer", "c0ffee"),
        ),
        ("filter state", first_says("x-facts-state", "seen")),
        ("dynamic metadata", first_says("x-facts-metadata", metadata)),
        ("shared data, first", first_says("x-facts-count", "1")),
        (
            "shared data, second",
            second.header("x-facts-count") == Some("2"),
        ),
        (
            "a response trailer added",
            first.trailer("x-facts-served") == Some("stream-facts"),
        ),
        (
            "the upstream's trailer kept",
            first.trailer(ECHO_TRAILER.0) == Some(ECHO_TRAILER.1),
        ),
        (
            "a timer held the request",
            held.status == 200 && waited(held) >= Some(50),
        ),
        ("no timer unasked", waited(first).is_none()),
        ("a gRPC call answered OK", grpc_answer(ok) == Some("0/2")),
        (
            "a gRPC call to nobody",
            grpc_answer(down).is_some_and(|a| a.starts_with("14/")),
        ),
        (
            "a request body replaced",
            shout.body.ends_with("\r\n\r\nQUIET WORDS"),
        ),
        (
            "values that are not UTF-8 read past",
            raw.status == 200 && raw.body.contains("x-facts-values: ok"),
        ),
    ]
}

fn problems(native: bool, answers: [&RawAnswer; 7]) -> Vec<String> {
    let mut checks = upstream_checks(answers[0], answers[1]);
    checks.extend(client_checks(native, answers));
    let kind = if native { ".so" } else { ".wasm" };
    checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| format!("[{kind}] {what}: {answers:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_capability_shows_through_envoy_as_wasm_and_as_so() {
    let upstream = TrailerEcho::start().await.expect("upstream");
    let (grpc, down) = grpc_servers().await;
    let dir = tempfile::tempdir().expect("work dir");
    let mut found = Vec::new();
    for native in [false, true] {
        let envoy = envoy(native, (&upstream, grpc, down), dir.path()).await;
        let first = send(
            envoy.listener,
            ("POST", "/greeted"),
            &[("x-multi", "a"), ("x-multi", "b")],
            "hello",
            &[("x-checksum", "c0ffee")],
        )
        .await
        .expect("first request");
        let second = send(envoy.listener, ("GET", "/"), &[], "", &[])
            .await
            .expect("second request");
        let delay = [("x-facts-delay-ms", "50")];
        let held = send(envoy.listener, ("GET", "/"), &delay, "", &[])
            .await
            .expect("held request");
        let ask = |cluster| [("x-facts-grpc", cluster)];
        let ok = send(envoy.listener, ("GET", "/"), &ask("grpc"), "", &[]).await;
        let down = send(envoy.listener, ("GET", "/"), &ask("grpc-down"), "", &[]).await;
        let (ok, down) = (ok.expect("gRPC request"), down.expect("gRPC request"));
        let loud = [("x-facts-shout", "1")];
        let shout = send(envoy.listener, ("POST", "/"), &loud, "quiet words", &[]).await;
        let shout = shout.expect("shouted request");
        let bytes = b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
            x-multi: \xff\xfe\r\nx-multi: ok\r\nx-facts-shout: \xc3\r\n\r\n";
        let raw = send_raw(envoy.listener, bytes).await.expect("raw request");
        let answers = [&first, &second, &held, &ok, &down, &shout, &raw];
        let mut these = problems(native, answers);
        if !these.is_empty() {
            let log = envoy.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            these.push(format!(
                "Envoy's log, last lines first:\n{}",
                tail.join("\n")
            ));
        }
        found.extend(these);
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
