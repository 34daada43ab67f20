//! Modules of the third-party corpus (`../shared/compat/`, the public proxy-wasm Rust SDK's
//! examples) behave through real Envoy under meshplug as the corpus README says. Each runs as
//! the one plugin of a composed mesh: `http_headers` answers `GET /hello` itself and passes the
//! rest to the upstream unchanged; `http_body` redacts a response body that holds `secret`,
//! whole, and passes other bodies unchanged.

use std::time::Duration;

use e2e::compat::composed_with;
use e2e::upstream::UPSTREAM_BODY;
use e2e::{Mesh, eventually};

/// Waits until `GET path` through the mesh's Envoy answers as `check` wants.
async fn wait_for_answer(
    mesh: &Mesh,
    path: &str,
    check: impl Fn(&e2e::mesh::Answer) -> Result<(), String>,
) {
    eventually(Duration::from_secs(30), &format!("GET {path}"), || async {
        let answer = mesh.get(0, path, &[]).await.map_err(|e| e.to_string())?;
        check(&answer)
    })
    .await;
}

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
    let listener = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {{name: ingress}}\n\
         spec:\n  port: 0\n  routes:\n    \
         - {{prefix: /secret, directResponse: {{status: 200, body: {secret:?}}}}}\n    \
         - {{prefix: /, cluster: upstream}}\n"
    );
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
