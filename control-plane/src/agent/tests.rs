//! The agent's cache against a real HTTP server: verified bytes are cached once, wrong bytes
//! and failed fetches leave nothing behind and say why.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;

use meshplug_core::artifact::ArtifactKind;
use meshplug_envoy::ecds::RemoteModule;

use super::Fetcher;
use crate::store::sha256_hex;

const MODULE: &[u8] = b"\0asm\x01\0\0\0 a module";

/// Serves `body` at every `/artifacts/...` path; counts requests.
async fn server(body: Vec<u8>, status: u16) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/artifacts/{file}",
        get(move || {
            let body = body.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let status = axum::http::StatusCode::from_u16(status).expect("status");
                (status, body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn module(base: &str) -> RemoteModule {
    let sha = sha256_hex(MODULE);
    RemoteModule {
        filter: "authz".into(),
        uri: format!("{base}/artifacts/{sha}.wasm"),
        sha256: sha,
        kind: ArtifactKind::Wasm,
    }
}

#[tokio::test]
async fn a_verified_module_is_cached_once_and_read_only() {
    let (base, hits) = server(MODULE.to_vec(), 200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(dir.path(), None, 1 << 20).expect("fetcher");
    let wanted = module(&base);
    let path = fetcher.ensure(&wanted).await.expect("fetched");
    assert_eq!(std::fs::read(&path).expect("read"), MODULE);
    assert_eq!(path, dir.path().join(format!("{}.wasm", wanted.sha256)));
    let mode = std::fs::metadata(&path).expect("meta").permissions();
    assert!(mode.readonly());
    fetcher.ensure(&wanted).await.expect("cached");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched once");
}

#[tokio::test]
async fn bytes_that_do_not_match_the_sha_are_refused_and_not_cached() {
    let mut flipped = MODULE.to_vec();
    flipped[9] ^= 0xff;
    let (base, _) = server(flipped, 200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(dir.path(), None, 1 << 20).expect("fetcher");
    let err = fetcher.ensure(&module(&base)).await.expect_err("refused");
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(
        left.is_empty(),
        "nothing cached, no temporary file left: {left:?}"
    );
}

#[tokio::test]
async fn a_refused_or_unreachable_fetch_says_why() {
    let (base, _) = server(b"withheld: Acceptance gate: envoy-1 NACKed\n".to_vec(), 410).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(dir.path(), None, 1 << 20).expect("fetcher");
    let err = fetcher.ensure(&module(&base)).await.expect_err("gone");
    assert!(err.to_string().contains("HTTP 410 Gone: withheld"), "{err}");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let err = fetcher.ensure(&module(&dead)).await.expect_err("refused");
    assert!(err.to_string().to_lowercase().contains("connect"), "{err}");
}

#[tokio::test]
async fn the_base_url_replaces_the_host_the_control_plane_named() {
    let (base, hits) = server(MODULE.to_vec(), 200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(dir.path(), Some(format!("{base}/")), 1 << 20).expect("fetcher");
    let elsewhere = module("http://198.18.0.2:1");
    assert!(fetcher.url_for(&elsewhere).starts_with(&base));
    fetcher
        .ensure(&elsewhere)
        .await
        .expect("fetched from the base");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cached_file_that_no_longer_matches_its_name_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sha = sha256_hex(MODULE);
    std::fs::write(dir.path().join(format!("{sha}.wasm")), b"tampered").expect("write");
    let fetcher = Fetcher::new(dir.path(), None, 1 << 20).expect("fetcher");
    assert_eq!(fetcher.verify_cache().expect("verify"), 1);
    assert!(!dir.path().join(format!("{sha}.wasm")).exists());
}
