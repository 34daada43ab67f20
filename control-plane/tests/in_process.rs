//! The whole control plane in this process (`serve::run` on 127.0.0.1:0): a build dropped
//! into the folder is pushed over ADS to an in-process client, whose ACK the node view and
//! `/api/v1/nodes` then show; the admin API needs the token for reads; connections that send
//! nothing or garbage are closed while the control plane keeps serving.

use std::path::Path;
use std::time::Duration;

use meshplug::check::Limits;
use meshplug::debounce::Quiet;
use meshplug::rollout::Policy;
use meshplug::serve::{BoundAddrs, Guards, ServeConfig, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use xds::proto::{AggregatedDiscoveryServiceClient, DiscoveryRequest, Node};

const TOKEN: &str = "in-process-token";
const ECDS: &str = xds::type_url::EXTENSION_CONFIG;
/// A module with a header and one custom section: passes the structural check.
const WASM: &[u8] = b"\0asm\x01\0\0\0\x00\x05\x04test";

struct Running {
    addrs: BoundAddrs,
    artifacts: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), meshplug::Error>>,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    start_in(tempfile::tempdir().expect("tempdir")).await
}

fn config_in(dir: &Path) -> ServeConfig {
    let any = "127.0.0.1:0".parse().expect("addr");
    ServeConfig {
        artifacts_dir: dir.join("artifacts"),
        data_dir: dir.join("data"),
        xds_addr: any,
        admin_addr: any,
        ready_file: Some(dir.join("ready.json")),
        artifacts: None,
        trusted_keys: Vec::new(),
        tls: None,
        insecure_admin: false,
        replicas: None,
        limits: Limits::default(),
        quiet: Quiet {
            after_close: Duration::from_millis(50),
            without_close: Duration::from_millis(500),
        },
        preflight: None,
        envoy: None,
        rollout_policy: Policy::immediate(),
        alert_webhook: None,
        admin_token: Some(TOKEN.into()),
        prefer_kind: meshplug::artifact::ArtifactKind::Wasm,
        mode: meshplug::serve::Mode::Folder,
        guards: Guards {
            xds_idle_timeout: Duration::from_millis(900),
            ..Guards::default()
        },
    }
}

async fn start_in(dir: tempfile::TempDir) -> Running {
    let artifacts = dir.path().join("artifacts");
    let ready = dir.path().join("ready.json");
    let config = config_in(dir.path());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(config, async move {
        let _ = stopped.await;
    }));
    let addrs = eventually("the ready file", || {
        let text = std::fs::read(&ready).ok()?;
        serde_json::from_slice::<BoundAddrs>(&text).ok()
    })
    .await;
    Running {
        addrs,
        artifacts,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Running {
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let url = format!("http://{}{path}", self.addrs.admin);
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("admin answers")
    }

    async fn metrics(&self) -> String {
        let response = self.get("/metrics", Some(TOKEN)).await;
        response.text().await.expect("metrics")
    }

    async fn nodes(&self) -> serde_json::Value {
        self.get("/api/v1/nodes", Some(TOKEN))
            .await
            .json()
            .await
            .expect("json")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops within 10 s");
        result.expect("task").expect("serve ends cleanly");
    }
}

fn drop_build(artifacts: &Path, name: &str, bytes: &[u8]) {
    let tmp = artifacts.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, artifacts.join(name)).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_reaches_an_ads_client_and_its_ack_shows_in_the_node_view() {
    let cp = start().await;
    assert_eq!(cp.get("/api/v1/nodes", None).await.status(), 401);
    assert_eq!(cp.get("/healthz", None).await.status(), 200);
    drop_build(&cp.artifacts, "authz.wasm", WASM);

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", cp.addrs.xds))
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(4);
    let request = |version: &str, nonce: &str, node: Option<Node>| DiscoveryRequest {
        node,
        type_url: ECDS.into(),
        resource_names: vec!["authz".into()],
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..DiscoveryRequest::default()
    };
    let node = Node {
        id: "in-process-1".into(),
        cluster: "test".into(),
        ..Node::default()
    };
    tx.send(request("", "", Some(node.clone())))
        .await
        .expect("send");
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let response = loop {
        let response = tokio::time::timeout(Duration::from_secs(15), inbound.message())
            .await
            .expect("a push within 15 s")
            .expect("stream ok")
            .expect("stream open");
        if !response.resources.is_empty() {
            break response;
        }
        let ack = request(&response.version_info, &response.nonce, None);
        tx.send(ack).await.expect("ack empty");
    };
    let sha = meshplug::store::sha256_hex(WASM);
    tx.send(request(&response.version_info, &response.nonce, None))
        .await
        .expect("ack");

    let mut acked = None;
    for _ in 0..200 {
        let nodes = cp.nodes().await;
        let filter = &nodes["nodes"][0]["filters"]["authz"];
        if filter["acked"]
            .as_str()
            .is_some_and(|v| v.starts_with(&sha))
        {
            acked = Some(filter.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let filter = acked.expect("the ACK shows in /api/v1/nodes");
    assert_eq!(filter["desired"], filter["acked"], "{filter}");
    assert_eq!(filter["sent"], filter["acked"], "{filter}");

    // A second stream of the same proxy: still one node, in the node view and in the gauge.
    let (tx2, rx2) = mpsc::channel(4);
    tx2.send(request("", "", Some(node))).await.expect("send");
    let mut inbound2 = client
        .stream_aggregated_resources(ReceiverStream::new(rx2))
        .await
        .expect("second stream")
        .into_inner();
    tokio::time::timeout(Duration::from_secs(15), inbound2.message())
        .await
        .expect("a response on the second stream")
        .expect("stream ok");
    let metrics = cp.metrics().await;
    assert!(
        metrics.contains("meshplug_connected_nodes 1\n"),
        "{metrics}"
    );
    let nodes = cp.nodes().await;
    let listed = nodes["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, 1, "{nodes}");
    assert_eq!(nodes["nodes"][0]["connected"], true, "{nodes}");
    drop(tx2);
    drop(tx);
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_garbage_connections_are_closed_and_serving_goes_on() {
    let cp = start().await;
    let mut silent = tokio::net::TcpStream::connect(cp.addrs.xds)
        .await
        .expect("connect");
    let mut garbage = tokio::net::TcpStream::connect(cp.addrs.xds)
        .await
        .expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x13garbage")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    for (what, conn) in [("silent", &mut silent), ("garbage", &mut garbage)] {
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the {what} connection was not closed");
    }
    assert_eq!(cp.get("/healthz", None).await.status(), 200);
    let metrics = cp.metrics().await;
    let closed = metrics
        .lines()
        .find(|l| l.starts_with("meshplug_limit_refusals_total{limit=\"idle_connection\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(closed.is_some_and(|n| n >= 1.0), "{metrics}");
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_file_stops_serve_with_the_way_out_instead_of_forgetting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let cp = start_in(dir).await;
    drop_build(&cp.artifacts, "authz.wasm", WASM);
    let state = root.join("data/rollouts/state.json");
    eventually("the build's rollout saved", || {
        let text = std::fs::read_to_string(&state).ok()?;
        text.contains("authz").then_some(())
    })
    .await;
    // A second build: a second generation, so the first is kept as the previous one.
    let second = b"\0asm\x01\0\0\0\x00\x05\x04two!";
    drop_build(&cp.artifacts, "authz.wasm", second);
    let second_sha = meshplug::store::sha256_hex(second);
    eventually("the second build saved", || {
        let text = std::fs::read_to_string(&state).ok()?;
        text.contains(&second_sha).then_some(())
    })
    .await;
    let Running {
        stop,
        task,
        _dir: kept,
        ..
    } = cp;
    let _ = stop.map(|s| s.send(()));
    let _ = task.await;
    for damage in ["deleted", "{}", "truncated"] {
        match damage {
            "deleted" => std::fs::remove_file(&state).expect("rm"),
            "{}" => std::fs::write(&state, "{}").expect("write"),
            _ => std::fs::write(&state, "{\"format\": 2, \"gen").expect("write"),
        }
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            run(config_in(&root), std::future::pending()),
        )
        .await
        .expect("serve returns at once");
        let err = result.expect_err("serve refuses to start").to_string();
        assert!(
            err.contains(&state.display().to_string()),
            "{damage}: {err}"
        );
        assert!(
            err.contains("meshplug state restore --previous"),
            "{damage}: {err}"
        );
    }
    let meshplug = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshplug"))
            .args(args)
            .arg("--data")
            .arg(root.join("data"))
            .output()
            .expect("meshplug runs")
    };
    let check = meshplug(&["state", "check"]);
    assert!(!check.status.success(), "a damaged state fails the check");
    let restore = meshplug(&["state", "restore", "--previous"]);
    let said = String::from_utf8_lossy(&restore.stdout);
    assert!(
        restore.status.success() && said.contains("restored"),
        "{said}{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let check = meshplug(&["state", "check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.contains("checksum ok"),
        "{said}"
    );
    let _ = std::fs::remove_file(root.join("ready.json"));
    let cp = start_in(kept).await;
    let rollouts: serde_json::Value = cp
        .get("/api/v1/rollouts", Some(TOKEN))
        .await
        .json()
        .await
        .expect("json");
    // Serving again from the previous generation: the build in the folder is the filter.
    let plugin = &rollouts["plugins"][0];
    assert_eq!(plugin["name"], "authz", "{rollouts}");
    let serves = plugin["last_good"]["sha256"] == second_sha.as_str()
        || plugin["rollout"]["to"]["sha256"] == second_sha.as_str();
    assert!(serves, "{rollouts}");
    cp.stop().await;
}

#[tokio::test]
async fn the_admin_api_is_served_off_loopback_only_with_tls_or_when_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_in(dir.path());
    config.admin_addr = "0.0.0.0:0".parse().expect("addr");
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        run(config.clone(), std::future::pending()),
    )
    .await
    .expect("serve returns at once");
    let err = refused.expect_err("no TLS, not loopback").to_string();
    assert!(err.contains("--insecure-admin"), "{err}");
    assert!(
        !dir.path().join("ready.json").exists(),
        "nothing was served"
    );
    config.insecure_admin = true;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(config, async move {
        let _ = stopped.await;
    }));
    let ready = dir.path().join("ready.json");
    let addrs = eventually("serving with --insecure-admin", || {
        serde_json::from_slice::<BoundAddrs>(&std::fs::read(&ready).ok()?).ok()
    })
    .await;
    assert!(addrs.admin.ip().is_unspecified(), "{addrs:?}");
    let _ = stop.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops");
    stopped.expect("task").expect("serve ends cleanly");
}
