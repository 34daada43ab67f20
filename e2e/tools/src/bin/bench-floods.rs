//! `make bench` (reliability): the release `meshplug serve` under floods a hostile or broken
//! client can send, with its RSS before and after each and how long the admin API takes:
//! - 40 ADS streams opening with 4 MiB of node metadata each (refused at the door);
//! - 400 short streams with 200 KiB of metadata each, which disconnect (forgotten after
//!   `--forget-nodes-after-s`);
//! - 1,000 TCP connections that send nothing (closed after `--xds-idle-timeout-s`);
//! - a decision log of 200,000 entries left by an earlier run (`GET /api/v1/rollouts`).
//!
//! Usage: bench-floods [--append FILE]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e::control_plane::ControlPlane;
use e2e::procstat::rss_kib;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use xds::proto::{AggregatedDiscoveryServiceClient, DiscoveryRequest, Node};

fn node(id: &str, metadata_bytes: usize) -> Node {
    let blob = Value {
        kind: Some(Kind::StringValue("m".repeat(metadata_bytes))),
    };
    Node {
        id: id.into(),
        cluster: "flood".into(),
        metadata: Some(Struct {
            fields: [("blob".to_string(), blob)].into_iter().collect(),
        }),
        ..Node::default()
    }
}

/// Opens one ADS stream as `id`, sends the first request and waits for the stream's first
/// answer or its end (bounded by 5 s); then drops it.
async fn one_stream(url: &str, id: &str, metadata_bytes: usize) -> anyhow::Result<bool> {
    let mut client = AggregatedDiscoveryServiceClient::connect(url.to_string())
        .await?
        .max_encoding_message_size(usize::MAX);
    let (tx, rx) = mpsc::channel(1);
    tx.send(DiscoveryRequest {
        node: Some(node(id, metadata_bytes)),
        type_url: xds::type_url::EXTENSION_CONFIG.into(),
        resource_names: vec!["authz".into()],
        ..DiscoveryRequest::default()
    })
    .await?;
    let Ok(response) = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    else {
        return Ok(false);
    };
    let mut inbound = response.into_inner();
    let answer = tokio::time::timeout(Duration::from_millis(500), inbound.message()).await;
    Ok(!matches!(answer, Ok(Err(_))))
}

async fn timed_get(url: &str, token: &str) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let body = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok((started.elapsed(), body.len()))
}

async fn node_count(admin: &str, token: &str) -> anyhow::Result<usize> {
    let nodes: serde_json::Value = reqwest::Client::new()
        .get(format!("{admin}/api/v1/nodes"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    Ok(nodes["nodes"].as_array().map_or(0, Vec::len))
}

fn seed_decisions(data: &std::path::Path, count: u64) -> anyhow::Result<()> {
    let dir = data.join("rollouts");
    std::fs::create_dir_all(&dir)?;
    let mut text = String::new();
    for seq in 1..=count {
        let _ = writeln!(
            text,
            r#"{{"seq":{seq},"at_ms":{seq},"plugin":"authz","rollout":"r","from":"a","to":"b","stage":{{"index":0,"stage":"step"}},"action":"look","gate":null,"reason":"Inconclusive","canary":["n1"],"baseline":["n2"],"canary_totals":null,"baseline_totals":null,"baseline_kind":null}}"#
        );
    }
    std::fs::write(dir.join("decisions.jsonl"), text)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let append = std::env::args().skip_while(|a| a != "--append").nth(1);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let fresh = tempfile::tempdir()?;
    let mut plain = ControlPlane::start_watching(
        fresh.path(),
        &fresh.path().join("artifacts"),
        &["--no-preflight"],
    )
    .await
    .context("starting meshplug")?;
    let fresh_rss = plain.process().pid().and_then(rss_kib).unwrap_or(0) / 1024;
    drop(plain);
    let work = tempfile::tempdir()?;
    seed_decisions(&work.path().join("data"), 200_000)?;
    let token = "bench-token";
    let args = [
        "--admin-token",
        token,
        "--xds-idle-timeout-s",
        "2",
        "--forget-nodes-after-s",
        "2",
        "--no-preflight",
    ];
    let started = Instant::now();
    let mut cp = ControlPlane::start_watching(work.path(), &work.path().join("artifacts"), &args)
        .await
        .context("starting meshplug")?;
    let start_ms = started.elapsed().as_millis();
    let pid = cp.process().pid().context("pid")?;
    let url = format!("http://{}", cp.addrs.xds);
    let admin = format!("http://{}", cp.addrs.admin);
    let rss = || rss_kib(pid).unwrap_or(0) / 1024;
    let mut report = String::new();
    let base = rss();
    let (rollouts, _) = timed_get(&format!("{admin}/api/v1/rollouts"), token).await?;
    let _ = writeln!(
        report,
        "| start with a 200,000-entry decision log | {start_ms} ms to ready | RSS {base} MiB (a fresh start: {fresh_rss} MiB) | `GET /api/v1/rollouts` {} ms |",
        rollouts.as_millis()
    );

    let mut served = 0;
    for i in 0..40 {
        served += usize::from(one_stream(&url, &format!("big-{i}"), 4 << 20).await?);
    }
    let (nodes, size) = timed_get(&format!("{admin}/api/v1/nodes"), token).await?;
    let _ = writeln!(
        report,
        "| 40 streams, 4 MiB node metadata each | {} of 40 served (the rest refused: RESOURCE_EXHAUSTED) | RSS {} MiB | `/api/v1/nodes` {size} B in {} ms |",
        served,
        rss(),
        nodes.as_millis()
    );

    let mut peak = 0;
    let mut most_listed = 0;
    for i in 0..400 {
        one_stream(&url, &format!("short-{i}"), 200 << 10).await?;
        if i % 50 == 49 {
            peak = peak.max(rss());
            most_listed = most_listed.max(node_count(&admin, token).await?);
        }
    }
    let (_, size_during) = timed_get(&format!("{admin}/api/v1/nodes"), token).await?;
    let listed = node_count(&admin, token).await?;
    let during = rss();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut size_after = size_during;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        size_after = timed_get(&format!("{admin}/api/v1/nodes"), token).await?.1;
        if size_after < 64 {
            break;
        }
    }
    let _ = writeln!(
        report,
        "| 400 short streams, 200 KiB metadata each, then gone | at most {most_listed} nodes listed at once (forgotten 2 s after they leave), peak RSS {peak} MiB; right after: {listed} nodes, `/api/v1/nodes` {size_during} B, RSS {during} MiB | RSS {} MiB once all are forgotten | `/api/v1/nodes` {size_after} B |",
        rss()
    );

    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(tokio::net::TcpStream::connect(cp.addrs.xds).await?);
    }
    let with_idle = rss();
    let closed_by = Instant::now() + Duration::from_secs(20);
    let mut open = idle.len();
    while Instant::now() < closed_by && open > 0 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut buf = [0u8; 1];
        open = 0;
        for conn in &idle {
            match conn.try_read(&mut buf) {
                Ok(0) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                _ => {}
            }
        }
    }
    let _ = writeln!(
        report,
        "| 1,000 TCP connections that send nothing | RSS {with_idle} MiB while open | {} still open after the 2 s idle timeout | RSS {} MiB |",
        open,
        rss()
    );
    drop(idle);
    let alive = cp.process().is_running();
    let _ = writeln!(report, "\nserve alive at the end: {alive}");
    println!("{report}");
    if let Some(file) = append {
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(&format!(
            "\n### bench-floods\n\n| flood | | memory | admin API |\n|---|---|---|---|\n{report}"
        ));
        std::fs::write(&file, text)?;
    }
    Ok(())
}
