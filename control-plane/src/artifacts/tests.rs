//! The artifact service over a real socket.

use std::collections::HashSet;
use std::sync::Mutex;

use super::*;
use crate::store::{Store, sha256_hex};

struct Served {
    base: String,
    sha: String,
    bytes: Vec<u8>,
    quarantined: Arc<Mutex<HashSet<String>>>,
    metrics: Arc<ArtifactMetrics>,
    _dir: tempfile::TempDir,
}

async fn serve(permits: usize, size: u32) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let sha = sha256_hex(&bytes);
    std::fs::write(dir.path().join(format!("{sha}.wasm")), &bytes).expect("write");
    let quarantined: Arc<Mutex<HashSet<String>>> = Arc::default();
    let q = Arc::clone(&quarantined);
    let metrics = Arc::new(ArtifactMetrics::default());
    let service = ArtifactService {
        store: Store::open(dir.path()).expect("store"),
        withheld: Arc::new(move |sha: &str| {
            q.lock()
                .expect("lock")
                .contains(sha)
                .then(|| "Acceptance gate: envoy-1 NACKed".to_string())
        }),
        permits: Arc::new(Semaphore::new(permits)),
        queue_timeout: Duration::from_millis(200),
        metrics: Arc::clone(&metrics),
        hot: Arc::new(HotArtifacts::new(16 << 20)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(service).into_make_service_with_connect_info::<PeerAddr>();
    let incoming = crate::tls::Incoming::new(listener, None, None).expect("incoming");
    tokio::spawn(async move { axum::serve(incoming, app).await });
    Served {
        base: format!("http://{addr}"),
        sha,
        bytes,
        quarantined,
        metrics,
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn serves_the_bytes_with_the_sha_as_etag_and_answers_if_none_match() {
    let served = serve(4, 200_000).await;
    let url = artifact_url(&served.base, &served.sha, ArtifactKind::Wasm);
    let reply = client().get(&url).send().await.expect("get");
    assert_eq!(reply.status(), 200);
    let etag = reply.headers()[header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    assert_eq!(etag, format!("\"{}\"", served.sha));
    assert!(
        reply.headers()[header::CACHE_CONTROL]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
    let body = reply.bytes().await.expect("body");
    assert_eq!(sha256_hex(&body), served.sha);
    let again = client()
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), 304);
    assert_eq!(served.metrics.fetches("served"), 1);
    assert_eq!(served.metrics.fetches("not_modified"), 1);
    assert_eq!(served.metrics.bytes_served(), served.bytes.len() as u64);
}

#[tokio::test]
async fn a_range_gets_206_with_those_bytes() {
    let served = serve(4, 200_000).await;
    let url = artifact_url(&served.base, &served.sha, ArtifactKind::Wasm);
    let reply = client()
        .get(&url)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status(), 206);
    let body = reply.bytes().await.expect("body");
    assert_eq!(&body[..], &served.bytes[100..200]);
}

#[tokio::test]
async fn nothing_but_stored_shas_is_served_and_a_quarantined_one_is_withheld() {
    let served = serve(4, 200_000).await;
    let http = client();
    let status = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.expect("get").status().as_u16() }
    };
    assert_eq!(
        status(format!("{}/artifacts/", served.base)).await,
        404,
        "no listing"
    );
    assert_eq!(status(format!("{}/", served.base)).await, 404);
    let other = "0".repeat(64);
    assert_eq!(
        status(format!("{}/artifacts/{other}.wasm", served.base)).await,
        404
    );
    let upper = served.sha.to_uppercase();
    assert_eq!(
        status(format!("{}/artifacts/{upper}.wasm", served.base)).await,
        404
    );
    assert_eq!(
        status(format!(
            "{}/artifacts/..%2F{}.wasm",
            served.base, served.sha
        ))
        .await,
        404
    );
    let as_so = artifact_url(&served.base, &served.sha, ArtifactKind::Native);
    assert_eq!(status(as_so).await, 404, "stored as .wasm only");
    served
        .quarantined
        .lock()
        .expect("lock")
        .insert(served.sha.clone());
    let url = artifact_url(&served.base, &served.sha, ArtifactKind::Wasm);
    let reply = http.get(&url).send().await.expect("get");
    assert_eq!(reply.status(), 410);
    let text = reply.text().await.expect("text");
    assert!(text.contains("withheld: Acceptance gate"), "{text}");
}

#[tokio::test]
async fn fetches_beyond_the_limit_wait_their_turn_then_get_503() {
    let served = serve(1, 64 << 20).await;
    let url = artifact_url(&served.base, &served.sha, ArtifactKind::Wasm);
    // One body held open (not read) keeps the only turn.
    let held = client().get(&url).send().await.expect("get");
    assert_eq!(held.status(), 200);
    let busy = client().get(&url).send().await.expect("get");
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
    drop(held);
    // The turn comes back once the held body is gone.
    let mut status = 0;
    for _ in 0..50 {
        status = client()
            .get(&url)
            .send()
            .await
            .expect("get")
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    assert!(served.metrics.fetches("busy") >= 1);
}
