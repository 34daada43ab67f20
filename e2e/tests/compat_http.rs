//! Modules of the third-party corpus (`../shared/compat/`, the public proxy-wasm Rust SDK's
//! examples) behave through real Envoy under meshplug as the corpus README says. Each runs as
//! the one plugin of a composed mesh: `http_headers` answers `GET /hello` itself and passes the
//! rest to the upstream unchanged; `http_body` redacts a response body that holds `secret`,
//! whole, and passes other bodies unchanged.

use e2e::compat::{composed_with, secret_listener, wait_for_answer};
use e2e::upstream::UPSTREAM_BODY;

fn header<'a>(answer: &'a e2e::mesh::Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_headers_answers_hello_itself_and_passes_the_rest() {
    let mesh = composed_with("http_headers.wasm", "http-headers", "")
        .await
        .expect("mesh");
    wait_for_answer(&mesh, "/hello", |a| {
        let ours = (
            a.status,
            header(a, "hello"),
            header(a, "powered-by"),
            a.body.trim_end(),
        );
        (ours == (200, Some("World"), Some("proxy-wasm"), "Hello, World!"))
            .then_some(())
            .ok_or_else(|| format!("{ours:?}"))
    })
    .await;
    let passed = mesh.get(0, "/other", &[]).await.expect("request");
    assert_eq!((passed.status, passed.body.as_str()), (200, UPSTREAM_BODY));
    assert_eq!(header(&passed, "hello"), None, "answered by the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_redacts_a_body_with_a_secret_and_passes_the_rest() {
    let mesh = composed_with("http_body.wasm", "http-body", "")
        .await
        .expect("mesh");
    let secret = "a secret here\n";
    let listener = secret_listener(secret);
    mesh.write_manifest("mesh", "ingress.yaml", &listener)
        .expect("listener");
    let redacted = format!("Original message body ({} bytes) redacted.\n", secret.len());
    wait_for_answer(&mesh, "/secret", |a| {
        (a.status == 200 && a.body == redacted && header(a, "content-length").is_none())
            .then_some(())
            .ok_or_else(|| format!("{} {:?} {:?}", a.status, a.body, a.headers))
    })
    .await;
    let passed = mesh.get(0, "/", &[]).await.expect("request");
    assert_eq!((passed.status, passed.body.as_str()), (200, UPSTREAM_BODY));
}
