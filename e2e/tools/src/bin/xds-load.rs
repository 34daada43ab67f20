//! `make bench-scale`: N simulated Envoy nodes against the release `meshplug serve`; measures
//! connect time, push convergence (receipt and ACK), control-plane memory and CPU, and bytes per
//! push. `--append FILE` adds the results, with method and machine, to FILE.
//!
//! Usage: xds-load --nodes N [--changes K] [--nack-percent P] [--slow-readers S] [--append F]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::load::{LoadConfig, LoadRun, percentiles};
use e2e::procstat::{cpu_seconds, rss_kib};
use e2e::{Mesh, eventually};

/// A minimal proxy-wasm filter that accepts any configuration: it passes the pre-flight.
fn module() -> anyhow::Result<Vec<u8>> {
    let text = meshplug_preflight::testing::proxy_wasm_wat(
        "(i32.const 1)",
        "(i32.const 1)",
        "(i32.const 0)",
        "",
    );
    Ok(wat::parse_str(text)?)
}

/// `module()` grown to about `kb` KiB by a custom section that also makes it unique to
/// `change` (a new sha, so every node fetches it again).
fn padded_module(change: usize, kb: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = module()?;
    let name = b"meshplug-load";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(format!("{change:08}").as_bytes());
    payload.resize(kb * 1024, 0x2a);
    out.push(0); // custom section id
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    Ok(out)
}

/// `meshplug_artifact_bytes_served_total` from the control plane's metrics.
async fn bytes_served(mesh: &Mesh) -> u64 {
    let served = mesh
        .control_plane
        .metric("meshplug_artifact_bytes_served_total")
        .await;
    served.unwrap_or(0.0) as u64
}

fn config(change: usize) -> String {
    format!(r#"{{"api_keys": ["key-{change}"], "header": "x-api-key"}}"#)
}

struct Args {
    nodes: usize,
    changes: usize,
    nack_percent: u8,
    slow_readers: usize,
    append: Option<String>,
    /// Nodes fetch each module from the artifact service (as hosts behind an agent), and each
    /// change is a new module of `module_kb` KiB.
    fetch: bool,
    module_kb: usize,
    /// Every stream over mTLS, each node with its own certificate (bound to its node id).
    tls: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let args = e2e::bench_args::BenchArgs::from_env();
    let number =
        |name: &str, default: usize| args.number(name, default).map_err(anyhow::Error::msg);
    Ok(Args {
        nodes: number("--nodes", 1000)?,
        changes: number("--changes", 5)?,
        nack_percent: u8::try_from(number("--nack-percent", 0)?)?,
        slow_readers: number("--slow-readers", 1)?,
        append: args.value("--append"),
        fetch: args.flag("--fetch"),
        module_kb: number("--module-kb", 160)?,
        tls: args.flag("--tls"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    // Every change to every node at once, tolerating the simulated NACKing share: the protocol
    // and the fan-out are measured, not the rollout gates.
    let policy = tempfile::NamedTempFile::new()?;
    let tolerated = (f64::from(args.nack_percent) / 100.0 + 0.01).min(1.0);
    std::fs::write(
        policy.path(),
        format!(
            r#"{{"steps": [{{"percent": 100}}], "bake": "0s", "crashWindow": "0s", "ackDeadline": "2s", "maxRejectShare": {tolerated}, "supersede": true}}"#
        ),
    )?;
    let policy_path = policy.path().display().to_string();
    let mut cp_args = vec!["--rollout-policy", policy_path.as_str()];
    if args.fetch {
        cp_args.extend(["--artifacts-addr", "127.0.0.1:0"]);
    }
    let pki = match args.tls {
        true => Some(e2e::pki::TestPki::new(&["127.0.0.1"])?),
        false => None,
    };
    let tls_args = pki
        .as_ref()
        .map(e2e::pki::TestPki::serve_args)
        .unwrap_or_default();
    cp_args.extend(tls_args.iter().map(String::as_str));
    let mut mesh = Mesh::start_control_plane(&cp_args).await?;
    if let Some(pki) = &pki {
        mesh.control_plane.trust(&pki.client(None))?;
    }
    let load_tls = pki
        .as_ref()
        .map(e2e::load::LoadTls::from_pki)
        .transpose()?
        .map(std::sync::Arc::new);
    mesh.publish("load.json", config(0).as_bytes())?;
    let first = match args.fetch {
        true => padded_module(0, args.module_kb)?,
        false => module()?,
    };
    mesh.publish("load.wasm", &first)?;
    let pid = mesh
        .control_plane
        .process()
        .pid()
        .context("control plane pid")?;
    eventually(Duration::from_secs(10), "the first publish", || async {
        match mesh.control_plane.plugin("load").await {
            Ok(p) if p["publishes"].as_u64().unwrap_or(0) >= 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let idle_rss = rss_kib(pid).unwrap_or(0);
    let cpu_start = cpu_seconds(pid).unwrap_or(0.0);

    let run = LoadRun::start(&LoadConfig {
        target: mesh.control_plane.addrs.xds,
        nodes: args.nodes,
        resource_names: vec!["load".into()],
        nack_percent: args.nack_percent,
        slow_readers: args.slow_readers,
        id_prefix: "sim".into(),
        fetch: args.fetch.then(e2e::load::Fetching::new).transpose()?,
        tls: load_tls,
    });
    let connect_deadline = Instant::now() + Duration::from_secs(300);
    while run.nodes_served() < args.nodes {
        if Instant::now() > connect_deadline {
            bail!(
                "only {} of {} nodes were served in 300 s",
                run.nodes_served(),
                args.nodes
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = run.started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server settle before reading RSS
    let connected_rss = rss_kib(pid).unwrap_or(0);

    let mut received = Vec::new();
    let mut acked = Vec::new();
    let mut per_change = String::new();
    let mut bytes = 0usize;
    for change in 1..=args.changes {
        let before = run.latest_versions();
        let t0 = Instant::now();
        match args.fetch {
            true => mesh.publish("load.wasm", &padded_module(change, args.module_kb)?)?,
            false => mesh.publish("load.json", config(change).as_bytes())?,
        };
        let done = run
            .converge(&before, t0, Duration::from_secs(120))
            .await
            .with_context(|| format!("change {change} did not converge in 120 s"))?;
        let (p50, p99, max) = percentiles(&done.received);
        let (a50, a99, amax) = percentiles(&done.acked);
        writeln!(
            per_change,
            "| {change} | {p50:.1} | {p99:.1} | {max:.1} | {a50:.1} | {a99:.1} | {amax:.1} | {} |",
            done.bytes
        )?;
        bytes = bytes.max(done.bytes);
        received.extend(done.received);
        acked.extend(done.acked);
    }
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_start;
    let final_rss = rss_kib(pid).unwrap_or(0);
    let per_stream = (connected_rss.saturating_sub(idle_rss) as f64) / args.nodes as f64;
    let (p50, p99, max) = percentiles(&received);
    let (a50, a99, amax) = percentiles(&acked);
    let stamp = e2e::bench_args::stamp();
    let fetch_rows = match args.fetch {
        true => format!(
            "| every change a new {kb} KiB module, fetched by every node from the artifact service and sha256-checked before its ACK | yes |\n\
             | artifact bytes served, whole run | {served} |\n",
            kb = args.module_kb,
            served = bytes_served(&mesh).await
        ),
        false => String::new(),
    };
    let report = format!(
        "### N = {nodes} ({slow} slow reader(s), {nack}% NACK{tls}), {stamp}\n\n\
         | measure | value |\n|---|---|\n\
         | streams held | {served} of {nodes} |\n\
         | connect + first response, all streams | {connect:.2} s |\n\
         | receipt after publish, all changes: p50 / p99 / max | {p50:.1} / {p99:.1} / {max:.1} ms |\n\
         | ACK after publish, all changes: p50 / p99 / max | {a50:.1} / {a99:.1} / {amax:.1} ms |\n\
         | control-plane RSS idle → connected → end | {idle} → {conn} → {fin} KiB |\n\
         | RSS per stream above idle | {per_stream:.2} KiB |\n\
         | control-plane CPU, connect + {changes} changes | {cpu:.2} s |\n\
         | bytes sent per push (all streams) | {bytes} |\n\
         | open-file limit | {fd_limit} |\n{fetch_rows}\n\
         Per change (ms from the rename of the new config into the watched folder):\n\n\
         | change | recv p50 | recv p99 | recv max | ACK p50 | ACK p99 | ACK max | bytes |\n\
         |---|---|---|---|---|---|---|---|\n{per_change}",
        nodes = args.nodes,
        tls = if args.tls {
            ", mTLS: a certificate per node, bound to its node id"
        } else {
            ""
        },
        slow = args.slow_readers,
        nack = args.nack_percent,
        served = run.nodes_served(),
        connect = connect_time.as_secs_f64(),
        idle = idle_rss,
        conn = connected_rss,
        fin = final_rss,
        changes = args.changes,
    );
    e2e::bench_args::publish(&report, args.append.as_deref())?;
    Ok(())
}
