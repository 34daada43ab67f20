//! `make bench`: what each filter costs Envoy per request, against peers doing the same job.
//!
//! Method: one Envoy per case (`envoy-config/bench-filter.yaml`, `--concurrency 1`, a route
//! that answers 200 itself, so the filter is the only work that differs), all running at once,
//! every Envoy thread pinned to the last core and this process (the load) to the others, and
//! every Envoy but the one measured stopped (SIGSTOP), so nothing else runs on its core.
//! In each round every case gets the same fixed number of requests at a fixed rate well below
//! saturation (`e2e::paced`), and the CPU time all of that Envoy's threads spent meanwhile
//! (`/proc/<pid>/task/*/schedstat`, ns) is divided by the requests. Rounds interleave the cases
//! (the order rotates each round); each case's cost is paired with the no-filter case of the
//! same round, so the machine's drift cancels. Reported: µs of CPU per request added over no
//! filter, mean with a 95% confidence interval over the rounds (Student's t), and as
//! secondary columns p99 latency at that rate and throughput at saturation (`wrk`).
//!
//! `--rounds N` (10), `--requests N` per case and round (10000), `--rate R` (8000 req/s) in
//! bursts of one request on each of `--connections N` (32),
//! `--wrk-rounds N` (3, 0 skips), `--only JOB` (authz, header-rewrite, ratelimit, or
//! `host call`: what each proxy-wasm host call costs, from a module making it 100 times a
//! request, since Envoy's binary is stripped and V8's frames are JIT code a profile cannot name;
//! or `floor`: an SDK filter doing nothing, as `.wasm` and `.so`),
//! `--saturate`: each measurement is `wrk` at saturation instead of the paced load (CPU per
//! request still; on this machine's shared virtual cores its rounds agree much more closely).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use e2e::bench_args::{BenchArgs, stamp};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::paced::{Pace, paced};
use e2e::paths::bootstrap_template;
use e2e::peers::{
    API_KEY, CALLS, FLOOR, FilterCase, HOST_CALLS, cases, floor_cases, host_call_cases,
};
use e2e::procstat::cpu_ns;
use meshplug::bootstrap::BootstrapVars;

const DIRECT: &str = r#"direct_response: { status: 200, body: { inline_string: "ok\n" } }"#;

/// Per case: CPU µs per request, one entry per round, and p99 ms per round.
#[derive(Debug, Default, Clone)]
struct Samples {
    cpu_us: Vec<f64>,
    p99_ms: Vec<f64>,
    rps: Vec<f64>,
}

struct Settings {
    rounds: usize,
    pace: Pace,
    wrk_rounds: usize,
    saturate: bool,
    /// When and on what, taken before this process is pinned to a core.
    stamp: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    // On a signal the run is dropped, and with it every Envoy (killed, stopped ones too).
    tokio::select! {
        done = run() => done,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}

async fn run() -> anyhow::Result<()> {
    let args = BenchArgs::from_env();
    let num = |name, default| args.number(name, default).map_err(anyhow::Error::msg);
    let settings = Settings {
        rounds: num("--rounds", 10)?.max(2),
        pace: Pace {
            total: num("--requests", 10_000)? as u64,
            rate: num("--rate", 8000)? as f64,
            connections: num("--connections", 32)? as u64,
            expect_status: 200,
        },
        wrk_rounds: num("--wrk-rounds", 3)?,
        saturate: args.flag("--saturate"),
        stamp: stamp(),
    };
    pin(std::process::id(), "0")?;
    let only = args.value("--only");
    let mut all = cases()?;
    match only.as_deref() {
        Some(HOST_CALLS) => all.extend(host_call_cases()?),
        Some(FLOOR) => all.extend(floor_cases()?),
        _ => {}
    }
    let cases: Vec<FilterCase> = all
        .into_iter()
        .filter(|c| c.job.is_empty() || only.as_deref().is_none_or(|job| c.job == job))
        .collect();
    let workdir = tempfile::tempdir()?;
    let mut envoys = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mut envoy = start(workdir.path(), i, case).await?;
        pin(envoy.process().pid().context("envoy pid")?, ENVOY_CORE)?;
        envoys.push(envoy);
    }
    for (envoy, case) in envoys.iter().zip(&cases) {
        check_answers(envoy, case).await?;
    }
    let samples = measure(&mut envoys, &cases, &settings).await?;
    print_report(&cases, &samples, &settings);
    Ok(())
}

/// The core every Envoy runs on; the load runs on the other (this machine has two).
const ENVOY_CORE: &str = "1";

/// Pins every thread of `pid` to `cores` (a `taskset` list).
fn pin(pid: u32, cores: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset -c {cores} {pid} failed");
    Ok(())
}

async fn start(dir: &std::path::Path, i: usize, case: &FilterCase) -> anyhow::Result<Envoy> {
    let mut vars = BootstrapVars::new();
    vars.insert("FILTERS", case.filters.clone());
    vars.insert("ROUTE_ACTION", DIRECT.to_string());
    vars.insert("UPSTREAM_PORT", "9".to_string());
    let options = EnvoyOptions {
        node_id: format!("bench-{i}"),
        cluster: "bench".into(),
        template: bootstrap_template("bench-filter.yaml"),
        vars,
        workers: 1,
        on_host: None,
    };
    Envoy::start(dir, options)
        .await
        .with_context(|| format!("{} {}", case.job, case.name))
}

/// Each case does its job before it is measured: the key passes, and for authz a request
/// without it is refused.
async fn check_answers(envoy: &Envoy, case: &FilterCase) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = envoy.url("/");
    let ok = client.get(&url).header("x-api-key", API_KEY).send().await?;
    if ok.status() != 200 {
        bail!("{} {}: the key got {}", case.job, case.name, ok.status());
    }
    if case.job == "authz" {
        let refused = client.get(&url).send().await?.status().as_u16();
        if refused != 401 && refused != 403 {
            bail!("{} {}: no key got {refused}", case.job, case.name);
        }
    }
    Ok(())
}

async fn measure(
    envoys: &mut [Envoy],
    cases: &[FilterCase],
    settings: &Settings,
) -> anyhow::Result<Vec<Samples>> {
    let headers = [("x-api-key", API_KEY)];
    let warm = Pace {
        total: settings.pace.total / 5,
        ..settings.pace.clone()
    };
    for envoy in envoys.iter_mut() {
        paced(&envoy.url("/"), &headers, &warm).await?;
        envoy.process().set_stopped(true);
    }
    let mut samples = vec![Samples::default(); cases.len()];
    for round in 0..settings.rounds {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let pid = envoys[i].process().pid().context("envoy pid")?;
            envoys[i].process().set_stopped(false);
            let before = cpu_ns(pid).context("reading schedstat")?;
            let (answered, p99) = if settings.saturate {
                let report = e2e::wrk::run_wrk(
                    &envoys[i].url("/"),
                    &headers,
                    settings.pace.connections as u32,
                    std::time::Duration::from_secs(3),
                )
                .await?;
                (report.requests, 0.0)
            } else {
                let report = paced(&envoys[i].url("/"), &headers, &settings.pace).await?;
                if report.unexpected + report.errors > 0 || report.answered == 0 {
                    bail!("{} {}: {report:?}", cases[i].job, cases[i].name);
                }
                (report.answered, report.quantile_ms(0.99))
            };
            let spent = cpu_ns(pid).context("reading schedstat")? - before;
            envoys[i].process().set_stopped(true);
            samples[i]
                .cpu_us
                .push(spent as f64 / 1000.0 / answered as f64);
            samples[i].p99_ms.push(p99);
        }
        eprintln!("round {round} done");
    }
    for _ in 0..settings.wrk_rounds {
        for (i, envoy) in envoys.iter_mut().enumerate() {
            envoy.process().set_stopped(false);
            samples[i].rps.push(wrk_rps(&envoy.url("/")).await?);
            envoy.process().set_stopped(true);
        }
    }
    for envoy in envoys.iter_mut() {
        envoy.process().set_stopped(false);
    }
    Ok(samples)
}

async fn wrk_rps(url: &str) -> anyhow::Result<f64> {
    let report = e2e::wrk::run_wrk(
        url,
        &[("x-api-key", API_KEY)],
        32,
        std::time::Duration::from_secs(4),
    )
    .await?;
    if report.non_2xx > 0 {
        bail!("wrk: {} non-2xx answers", report.non_2xx);
    }
    Ok(report.requests as f64 / 4.0)
}

/// Mean and half-width of a 95% confidence interval (Student's t).
fn mean_ci(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t95(values.len() - 1) * (var / n).sqrt())
}

/// Student's t for a two-sided 95% interval with `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    TABLE.get(df.saturating_sub(1)).copied().unwrap_or(1.96)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Per-round differences `a - b`, and ratios `a / b`.
fn paired(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let diff = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let ratio = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (diff, ratio)
}

fn print_report(cases: &[FilterCase], samples: &[Samples], settings: &Settings) {
    let pace = &settings.pace;
    let load = match settings.saturate {
        true => format!("wrk -t2 -c{} -d3s at saturation", pace.connections),
        false => format!(
            "{} requests at {} req/s in bursts of {}",
            pace.total, pace.rate, pace.connections
        ),
    };
    println!(
        "### CPU per request, {} ({} rounds × {load} per case, Envoy --concurrency 1 pinned to one core, direct_response)\n",
        settings.stamp, settings.rounds,
    );
    println!(
        "| job | case | CPU µs/request | added over no filter, µs (95% CI) | × no filter | p99 ms (paced load) | req/s at saturation (wrk, median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let base = &samples[0];
    let mut added = BTreeMap::new();
    for (case, s) in cases.iter().zip(samples) {
        let (mean, _) = mean_ci(&s.cpu_us);
        let (diff, ratio) = paired(&s.cpu_us, &base.cpu_us);
        let (add, ci) = mean_ci(&diff);
        added.insert((case.job, case.name), diff);
        println!(
            "| {} | {} | {mean:.2} | {add:+.2} ± {ci:.2} | {:.3} | {:.2} | {:.0} |",
            if case.job.is_empty() { "-" } else { case.job },
            case.name,
            median(&ratio),
            median(&s.p99_ms),
            median(&s.rps),
        );
    }
    print_goals(cases, samples, &added);
}

/// The ratios the performance goals are stated in, paired by round.
fn print_goals(
    cases: &[FilterCase],
    samples: &[Samples],
    added: &BTreeMap<(&str, &str), Vec<f64>>,
) {
    let cpu = |job: &str, name: &str| {
        cases
            .iter()
            .position(|c| c.job == job && c.name == name)
            .map(|i| samples[i].cpu_us.clone())
    };
    println!();
    if let Some(none) = added.get(&(HOST_CALLS, "no call")) {
        for case in cases
            .iter()
            .filter(|c| c.job == HOST_CALLS && c.name != "no call")
        {
            let Some(with) = added.get(&(case.job, case.name)) else {
                continue;
            };
            let (diff, _) = paired(with, none);
            let (m, ci) = mean_ci(&diff);
            let calls = f64::from(CALLS);
            println!(
                "- one {}: {:.3} ± {:.3} µs",
                case.name,
                m / calls,
                ci / calls
            );
        }
    }
    if let (Some(sdk), Some(raw)) = (
        cpu("authz", "SDK .wasm"),
        cpu("authz", "hand-written proxy-wasm .wasm"),
    ) {
        let (_, ratio) = paired(&sdk, &raw);
        let (m, ci) = mean_ci(&ratio);
        println!("- authz SDK .wasm ÷ hand-written .wasm, CPU per request: {m:.3} ± {ci:.3}");
    }
    for (job, builtins) in [
        ("authz", &["built-in RBAC", "built-in Lua"][..]),
        ("header-rewrite", &["built-in header mutation"][..]),
        ("ratelimit", &["built-in local rate limit"][..]),
    ] {
        let Some(so) = added.get(&(job, "SDK .so")) else {
            continue;
        };
        for builtin in builtins {
            let Some(peer) = added.get(&(job, *builtin)) else {
                continue;
            };
            let (m, _) = mean_ci(so);
            let (p, _) = mean_ci(peer);
            println!(
                "- {job} SDK .so adds {m:.2} µs; {builtin} adds {p:.2} µs: ratio {:.2}",
                m / p
            );
        }
    }
}
