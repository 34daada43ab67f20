//! The admin API on 127.0.0.1:0: rollout controls need the bearer token, `/metrics` speaks
//! Prometheus text, and the rollout list shows what the engine holds.

use std::path::PathBuf;

use super::*;
use crate::artifact::ArtifactKind;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::StateFiles;
use crate::rollout::{Policy, Release};

struct Admin {
    base: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

async fn admin(token: Option<&str>) -> Admin {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut prometheus = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(RolloutMetrics::register(&mut prometheus));
    let engine = Engine::open(
        Policy::default(),
        StateFiles::open(dir.path()).expect("state"),
        Arc::new(xds::SnapshotCache::new()),
        metrics,
        None,
    )
    .expect("engine");
    let engine = Arc::new(Mutex::new(engine));
    let release = |tag: &str| Release {
        version: format!("{tag}:cfg"),
        sha256: tag.to_string(),
        kind: ArtifactKind::Wasm,
        path: PathBuf::from("/store/x.wasm"),
        config_json: "{}".into(),
        envoy_version: None,
        failure_policy: Default::default(),
    };
    {
        let mut engine = engine.lock().expect("engine");
        engine.release("authz", release("aaaa"), 1).expect("first");
        engine
            .command("authz", crate::rollout::Command::Promote { full: true }, 2)
            .expect("promote");
        engine.release("authz", release("bbbb"), 3).expect("second");
    }
    let state = AdminState {
        registry: Arc::new(Mutex::new(Registry::new())),
        fleet: Arc::new(Mutex::new(Fleet::new())),
        ready: Arc::new(AtomicBool::new(true)),
        engine,
        prometheus: Arc::new(prometheus),
        token: token.map(Arc::from),
        manifests: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Admin {
        base: format!("http://{addr}"),
        _dir: dir,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
    }
}

#[tokio::test]
async fn controls_need_the_token_when_one_is_set() {
    let api = admin(Some("s3cret")).await;
    let url = format!("{}/api/v1/rollouts/authz/pause", api.base);
    let none = api.http.post(&url).send().await.expect("send");
    assert_eq!(none.status(), 401);
    let wrong = api
        .http
        .post(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 403);
    let right = api
        .http
        .post(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(right.status(), 200);
    let body: serde_json::Value = right.json().await.expect("json");
    assert_eq!(body["message"], "authz: paused");
}

#[tokio::test]
async fn bad_controls_are_clear_errors() {
    let api = admin(None).await;
    let unknown = api
        .http
        .post(format!("{}/api/v1/rollouts/authz/explode", api.base))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);
    let retry = api
        .http
        .post(format!("{}/api/v1/rollouts/authz/retry", api.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(retry.status(), 400);
    let nothing = api
        .http
        .post(format!("{}/api/v1/rollouts/ratelimit/pause", api.base))
        .send()
        .await
        .expect("send");
    assert_eq!(nothing.status(), 409);
    let body: serde_json::Value = nothing.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no rollout")),
        "{body}"
    );
}

#[tokio::test]
async fn rollouts_and_metrics_show_the_engine() {
    let api = admin(None).await;
    let list: serde_json::Value = api
        .http
        .get(format!("{}/api/v1/rollouts", api.base))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let authz = &list["plugins"][0];
    assert_eq!(authz["last_good"]["sha256"], "aaaa", "{list}");
    assert_eq!(authz["rollout"]["to"]["sha256"], "bbbb", "{list}");
    assert!(
        authz["recent_decisions"]
            .as_array()
            .is_some_and(|d| d.len() >= 3),
        "{list}"
    );
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("meshplug_rollouts_started_total{plugin=\"authz\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("meshplug_rollouts_promoted_total{plugin=\"authz\"} 1"),
        "{text}"
    );
    assert!(text.contains("# EOF"), "{text}");
}
