//! `make bench`: filter overhead. Requests per second and p99 latency through Envoy with no
//! filter, with `authz` as Wasm, and with `authz` as a dynamic module, measured with `wrk` in one
//! run (rounds interleaved across the three cases) and reported as ratios to the no-filter case.
//!
//! Each case is its own Envoy (`envoy-config/bench-filter.yaml`), so the filter is the only work
//! that differs. Two setups: the route answers itself (`direct_response`, the harshest: Envoy
//! does almost nothing else), and the route proxies to an upstream (this process's axum server).
//! Every request carries an allowed API key.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::paths::{bootstrap_template, filter_artifact};
use meshplug::bootstrap::BootstrapVars;

const CONFIG: &str = r#"{"api_keys": ["bench-key"]}"#;
const ROUNDS: usize = 5;
const SECONDS: u32 = 8;

/// Requests per second and p99 latencies, one entry per round.
type Samples = (Vec<f64>, Vec<f64>);

fn wasm_filter(path: &Path) -> String {
    format!(
        r#"{{ name: authz, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: {{ name: authz, vm_config: {{ vm_id: authz, runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: "{}" }} }} }}, configuration: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: '{CONFIG}' }} }} }} }},"#,
        path.display()
    )
}

fn native_filter(path: &Path) -> String {
    format!(
        r#"{{ name: authz, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter, dynamic_module_config: {{ module: {{ local: {{ filename: "{}" }} }} }}, filter_name: authz, filter_config: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: '{CONFIG}' }} }} }},"#,
        path.display()
    )
}

/// One wrk run: requests per second and p99 latency in ms.
fn wrk(url: &str) -> anyhow::Result<(f64, f64)> {
    let output = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            "32",
            "-d",
            &format!("{SECONDS}s"),
            "--latency",
        ])
        .args(["-H", "x-api-key: bench-key", url])
        .output()
        .context("running wrk (make setup installs it)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        bail!("non-2xx answers: the filter refused the benchmark's requests\n{text}");
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("no Requests/sec in wrk output")?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| millis(v.trim()))
        .context("no 99% latency in wrk output")?;
    Ok((rps, p99))
}

/// wrk's latency text (`812.00us`, `1.25ms`, `1.02s`) in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let upstream = e2e::upstream::Upstream::start().await?;
    let direct = r#"direct_response: { status: 200, body: { inline_string: "ok\n" } }"#;
    run("direct_response", direct, upstream.addr.port()).await?;
    run(
        "proxied to an upstream",
        "route: { cluster: upstream }",
        upstream.addr.port(),
    )
    .await
}

async fn run(setup: &str, route_action: &str, upstream_port: u16) -> anyhow::Result<()> {
    let wasm = filter_artifact("authz.wasm").context("make filters")?;
    let native = filter_artifact("libauthz.so").context("make filters")?;
    let cases = [
        ("no filter", String::new()),
        ("authz.wasm", wasm_filter(&wasm)),
        ("libauthz.so", native_filter(&native)),
    ];
    let workdir = tempfile::tempdir()?;
    let mut envoys: Vec<Envoy> = Vec::new();
    for (i, (_, filters)) in cases.iter().enumerate() {
        let mut vars = BootstrapVars::new();
        vars.insert("FILTERS", filters.clone());
        vars.insert("ROUTE_ACTION", route_action.to_string());
        vars.insert("UPSTREAM_PORT", upstream_port.to_string());
        let options = EnvoyOptions {
            node_id: format!("bench-{i}"),
            cluster: "bench".into(),
            template: bootstrap_template("bench-filter.yaml"),
            vars,
            workers: e2e::envoy::DEFAULT_WORKERS,
            on_host: None,
        };
        envoys.push(Envoy::start(workdir.path(), options).await?);
    }
    let mut results: Vec<Samples> = vec![(Vec::new(), Vec::new()); cases.len()];
    for round in 0..ROUNDS {
        for (i, envoy) in envoys.iter().enumerate() {
            let (rps, p99) = wrk(&envoy.url("/"))?;
            eprintln!(
                "{setup} round {round} {}: {rps:.0} req/s, p99 {p99:.2} ms",
                cases[i].0
            );
            results[i].0.push(rps);
            results[i].1.push(p99);
        }
    }
    // Ratios are paired by round (each case against the no-filter run just before it), then
    // the median is taken: the machine's drift between rounds cancels out.
    let paired = |i: usize, which: fn(&Samples) -> &Vec<f64>| {
        let mut ratios: Vec<f64> = which(&results[i])
            .iter()
            .zip(which(&results[0]))
            .map(|(case, base)| case / base)
            .collect();
        median(&mut ratios)
    };
    let ratios: Vec<(f64, f64)> = (0..cases.len())
        .map(|i| (paired(i, |r| &r.0), paired(i, |r| &r.1)))
        .collect();
    let medians: Vec<(f64, f64)> = results
        .iter_mut()
        .map(|(rps, p99)| (median(rps), median(p99)))
        .collect();
    println!("## Filter overhead, {setup}: wrk -t2 -c32 -d{SECONDS}s, {ROUNDS} interleaved rounds");
    println!(
        "| case | req/s (median) | req/s × no filter (paired median) | p99 ms (median) | p99 × no filter (paired median) |"
    );
    println!("|---|---|---|---|---|");
    for (((name, _), (rps, p99)), (rps_ratio, p99_ratio)) in cases.iter().zip(&medians).zip(&ratios)
    {
        println!("| {name} | {rps:.0} | {rps_ratio:.3} | {p99:.2} | {p99_ratio:.2} |");
    }
    Ok(())
}
