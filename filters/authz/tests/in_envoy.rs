//! The authz filter tests itself in a real Envoy with `meshplug-testkit`: its own
//! `envoy.yaml` and `cases.yaml`, and a request made from Rust. Needs the build `make filters`
//! writes (`target/filters/authz.wasm`) and Envoy (`MESHPLUG_ENVOY`, set by the Makefile).

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use meshplug_testkit::{Envoy, Request, UpstreamResponse, read_cases};

fn here(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

fn build() -> PathBuf {
    let build = here("../../target/filters/authz.wasm");
    assert!(
        build.is_file(),
        "{}: run `make filters` first",
        build.display()
    );
    build
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_in_its_envoy() {
    let mut envoy = Envoy::from_config(here("envoy.yaml"))
        .with_filter("authz", build())
        .with_config("authz", r#"{"api_keys": ["k1"]}"#)
        .with_upstream("api", UpstreamResponse::default())
        .start()
        .await
        .expect("Envoy runs the filter");
    let allowed = envoy
        .request(None, &Request::get("/orders").header("x-api-key", "k1"))
        .await
        .expect("an answer");
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(
        allowed
            .upstream_headers
            .and_then(|h| h.get("x-api-key").cloned()),
        Some("k1".to_string())
    );
    let refused = envoy
        .request(None, &Request::get("/orders"))
        .await
        .expect("an answer");
    assert_eq!((refused.status, refused.local_reply), (401, true));

    let cases = read_cases(&here("cases.yaml")).expect("cases parse");
    let results = envoy.run_cases(&cases, &here(".")).await;
    for result in &results {
        assert!(result.passed(), "{}: {:?}", result.name, result.failures);
    }
    assert_eq!(results.len(), cases.cases.len());
}
