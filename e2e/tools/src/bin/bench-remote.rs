//! `make bench` (as root): hot-swap latency to an Envoy on another host (its own network and
//! mount namespace, behind `meshplug agent`, fetching from the artifact service) against an
//! Envoy on the control plane's host reading the store's path, same build, paired per swap:
//! each swap publishes one new build (a fresh sha, a new V8 compile) and times the rename →
//! the first response from it, on both Envoys at once.

use std::time::Instant;

use e2e::Mesh;
use e2e::paths::filter_artifact;
use e2e::swaps::{Builds, paired, summary, wait_for_tag};
use meshplug::bootstrap::BootstrapVars;

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Starts one remote host and one local Envoy (`local`) on the control plane's host.
async fn start() -> anyhow::Result<Mesh> {
    let mut mesh = Mesh::start_hosts(1, &[]).await?;
    let ip = mesh.net().control_plane_ip().to_string();
    let mut vars = BootstrapVars::new();
    for name in ["XDS_HOST", "METRICS_HOST", "UPSTREAM_HOST"] {
        vars.insert(name, ip.clone());
    }
    mesh.add_envoy_with("local", "edge", vars).await?;
    mesh.publish_authz_config()?;
    Ok(mesh)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let swaps = flag(&args, "--swaps").unwrap_or(30);
    let builds = Builds {
        a: std::fs::read(filter_artifact("test/authz-a.wasm")?)?,
        b: std::fs::read(filter_artifact("test/authz-b.wasm")?)?,
    };
    let mesh = start().await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let remote_url = mesh.envoys[0].url("/");
    let local_url = mesh.envoys[1].url("/");
    let (mut remote, mut local) = (Vec::new(), Vec::new());
    for n in 1..=swaps + 1 {
        let (module, tag) = builds.unique(n);
        let started = Instant::now();
        mesh.publish("authz.wasm", &module)?;
        let (r, l) = tokio::join!(
            wait_for_tag(&http, &remote_url, tag, started),
            wait_for_tag(&http, &local_url, tag, started)
        );
        // The first swap also starts both VMs: not counted.
        if n > 1 {
            remote.push(r?);
            local.push(l?);
        }
    }
    let r = summary(&remote);
    let l = summary(&local);
    println!(
        "## Hot-swap latency, another host (agent, artifact service) vs the control plane's host (store path)"
    );
    println!("swaps: {swaps}, each timed on both Envoys at once (same build)");
    println!("| Envoy | min ms | median ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| other host: agent fetch + sha256 + cache + local path | {:.1} | {:.1} | {:.1} | {:.1} |",
        r[0], r[1], r[2], r[3]
    );
    println!(
        "| control plane's host: store path | {:.1} | {:.1} | {:.1} | {:.1} |",
        l[0], l[1], l[2], l[3]
    );
    let [median, p90, max] = paired(&remote, &local);
    println!(
        "median ratio remote/local: {:.2}; paired per-swap difference ms (remote - local): median {median:.1}, p90 {p90:.1}, max {max:.1}",
        r[1] / l[1]
    );
    Ok(())
}
