//! The admin API on 127.0.0.1:0: rollout controls need the bearer token, `/metrics` speaks
//! Prometheus text, and the rollout list shows what the engine holds.

use std::path::PathBuf;

use super::*;
use crate::artifact::ArtifactKind;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::StateFiles;
use crate::rollout::{Policy, Release};

pub(super) struct Admin {
    pub(super) base: String,
    _dir: tempfile::TempDir,
    pub(super) http: reqwest::Client,
}

impl Admin {
    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.http.get(url).send().await.expect("send")
    }

    pub(super) async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("json")
    }

    async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("text")
    }
}

pub(super) async fn admin(token: Option<&str>) -> Admin {
    admin_remembering(
        token,
        crate::rollout::state::log::LogLimits::default().in_memory,
    )
    .await
}

/// As [`admin`], its engine keeping the newest `in_memory` decisions in memory.
async fn admin_remembering(token: Option<&str>, in_memory: usize) -> Admin {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut prometheus = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(RolloutMetrics::register(&mut prometheus));
    let xds_metrics = crate::xds_metrics::XdsMetrics::register(&mut prometheus);
    let node = xds::NodeInfo::default();
    // One proxy on two streams: the gauge counts it once (the node model counts).
    let mut nodes = meshplug_core::nodes::Nodes::new();
    let identity = meshplug_core::nodes::NodeIdentity::default();
    nodes.connect(&identity, 0);
    nodes.connect(&identity, 0);
    xds_metrics.set_connected(nodes.connected_count());
    for (nonce, acked) in [("1", true), ("2", false)] {
        let type_url = xds::type_url::EXTENSION_CONFIG.to_string();
        xds_metrics.observe(&xds::XdsEvent::Sent {
            stream: 1,
            node: node.clone(),
            type_url: type_url.clone(),
            version: "v".into(),
            nonce: nonce.into(),
            resources: vec![],
        });
        let (stream, node, version, nonce) = (1, node.clone(), "v".into(), nonce.into());
        xds_metrics.observe(&if acked {
            xds::XdsEvent::Ack {
                stream,
                node,
                type_url,
                version,
                nonce,
                resources: vec![],
            }
        } else {
            let error = "refused".into();
            xds::XdsEvent::Nack {
                stream,
                node,
                type_url,
                version,
                nonce,
                resources: vec![],
                error,
            }
        });
    }
    metrics.set_in_progress(&std::collections::BTreeMap::from([(
        "step-1".to_string(),
        1,
    )]));
    let engine = Engine::open(
        Policy::default(),
        StateFiles::open_with(
            dir.path(),
            crate::rollout::state::log::LogLimits {
                in_memory,
                ..Default::default()
            },
        )
        .expect("state"),
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
        signers: Vec::new(),
        vm: Default::default(),
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
        ready: Arc::new(AtomicBool::new(true)),
        engine,
        prometheus: Arc::new(prometheus),
        token: token.map(Arc::from),
        manifests: None,
        replicas: None,
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
    let list: serde_json::Value = api.get_json("/api/v1/rollouts").await;
    let authz = &list["plugins"][0];
    assert_eq!(authz["last_good"]["sha256"], "aaaa", "{list}");
    assert_eq!(authz["rollout"]["to"]["sha256"], "bbbb", "{list}");
    assert!(
        authz["recent_decisions"]
            .as_array()
            .is_some_and(|d| d.len() >= 3),
        "{list}"
    );
    let text = api.get_text("/metrics").await;
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

#[tokio::test]
async fn metrics_cover_xds_and_rollouts_in_progress() {
    let api = admin(None).await;
    let text = api.get_text("/metrics").await;
    for family in [
        "meshplug_xds_pushes_total{type=\"ecds\"} 2",
        "meshplug_xds_acks_total{type=\"ecds\"} 1",
        "meshplug_xds_nacks_total{type=\"ecds\"} 1",
        "meshplug_connected_nodes 1",
        "meshplug_push_latency_seconds_count 2",
        "meshplug_rollouts_in_progress{stage=\"step-1\"} 1",
        "meshplug_rollouts_started_total{plugin=\"authz\"}",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
}

#[tokio::test]
async fn pprof_serves_a_cpu_profile_and_guards_it() {
    let api = admin(Some("s3cret")).await;
    let url = |seconds: &str| format!("{}/debug/pprof/profile?seconds={seconds}", api.base);
    let refused = api.http.get(url("1")).send().await.expect("send");
    assert_eq!(refused.status(), 401);
    let too_long = api
        .http
        .get(url("3600"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(too_long.status(), 400);
    let response = api
        .http
        .get(url("1"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body");
    use ::pprof::protos::Message;
    let profile = ::pprof::protos::Profile::parse_from_bytes(&bytes).expect("a pprof profile");
    assert!(!profile.sample_type.is_empty());
    assert!(
        profile.duration_nanos >= 900_000_000,
        "{}",
        profile.duration_nanos
    );
}

#[tokio::test]
async fn manifests_say_whether_they_govern() {
    let api = admin(None).await;
    let body: serde_json::Value = api.get_json("/api/v1/manifests").await;
    assert_eq!(body["enabled"], false);
    assert_eq!(body["files"], serde_json::json!([]));
}

#[tokio::test]
async fn with_a_token_every_endpoint_but_health_needs_it() {
    let api = admin(Some("s3cret")).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(api.get(path).await.status(), 200, "{path}");
    }
    for path in [
        "/api/v1/plugins",
        "/api/v1/nodes",
        "/api/v1/manifests",
        "/api/v1/rollouts",
        "/api/v1/rollouts/authz/decisions",
        "/metrics",
    ] {
        assert_eq!(api.get(path).await.status(), 401, "{path}");
        let url = format!("{}{path}", api.base);
        let with = api
            .http
            .get(url)
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("send");
        assert_eq!(with.status(), 200, "{path} with the token");
    }
    assert_eq!(
        api.get("/debug/pprof/profile?seconds=1").await.status(),
        401
    );
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let api = admin(Some("s3cret")).await;
    let url = format!("{}/api/v1/rollouts/authz/pause", api.base);
    let bodies: [(&str, Vec<u8>); 4] = [
        ("application/json", b"{not json".to_vec()),
        ("text/plain", b"hello".to_vec()),
        ("application/json", vec![b' '; 2 * MAX_BODY_BYTES]),
        ("application/json", br#"{"full": "yes"}"#.to_vec()),
    ];
    for (content_type, body) in bodies {
        let response = api
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{content_type}");
    }
    let too_big = api
        .http
        .post(&url)
        .bearer_auth("s3cret")
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * MAX_BODY_BYTES])
        .send()
        .await
        .expect("send");
    assert_eq!(too_big.status(), 413);
}

#[tokio::test]
async fn decisions_memory_no_longer_holds_are_served_from_the_log_files() {
    let all = admin(None).await;
    let path = "/api/v1/rollouts/authz/decisions?since=0";
    let seqs = |page: serde_json::Value| -> Vec<u64> {
        let page = page.as_array().cloned().unwrap_or_default();
        page.iter().filter_map(|d| d["seq"].as_u64()).collect()
    };
    let everything = seqs(all.get_json(path).await);
    assert!(everything.len() >= 3, "{everything:?}");

    let forgetful = admin_remembering(None, 1).await;
    let rollouts = forgetful.get_json("/api/v1/rollouts").await;
    let recent = rollouts["plugins"][0]["recent_decisions"]
        .as_array()
        .map(Vec::len);
    assert_eq!(recent, Some(1), "memory holds one: {rollouts}");
    assert_eq!(seqs(forgetful.get_json(path).await), everything);
    let mut paged = Vec::new();
    let mut since = 0;
    loop {
        let url = format!("/api/v1/rollouts/authz/decisions?since={since}&limit=1");
        let page = seqs(forgetful.get_json(&url).await);
        let Some(last) = page.last() else { break };
        since = *last;
        paged.extend(page);
    }
    assert_eq!(paged, everything, "a page at a time, the same log");
}
