//! `make bench` (pre-flight part): time of one whole pre-flight (validate, instantiate, VM start,
//! configure, 10 fixtures) for the ~190 KB `authz` build and a generated ~2 MB module, cold (a
//! new engine for each run, as for a build never seen) and warm (one engine for every run).
//! Median of 7 runs, in one process; `--append FILE` adds the table to FILE.

use std::time::{Duration, Instant};

use meshplug_preflight::testing::proxy_wasm_wat;
use meshplug_preflight::{Expectation, Fixture, FixtureRequest, Limits, Preflight};

const RUNS: usize = 7;

struct Case {
    label: String,
    wasm: Vec<u8>,
    config: Vec<u8>,
    fixtures: Vec<Fixture>,
}

fn fixture(name: String, key: Option<&str>, status: u16) -> Fixture {
    Fixture {
        name,
        request: FixtureRequest {
            headers: key
                .map(|k| [("x-api-key".to_string(), k.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        },
        upstream: Default::default(),
        callouts: Vec::new(),
        chunk_size: None,
        ticks: 0,
        properties: Vec::new(),
        expect: Expectation {
            status: Some(status),
            ..Default::default()
        },
    }
}

/// About 2 MB of code: 1,000 functions of 500 additions each, plus the minimal filter.
fn generated_module() -> Vec<u8> {
    let body: String = (0..500)
        .map(|i| format!("(i32.add (i32.const {i}))"))
        .collect();
    let funcs: String = (0..1000)
        .map(|_| format!("(func (param i32) (result i32) (local.get 0) {body})"))
        .collect();
    wat::parse_str(proxy_wasm_wat(
        "(i32.const 1)",
        "(i32.const 1)",
        "(i32.const 0)",
        &funcs,
    ))
    .expect("generated WAT")
}

fn cases() -> anyhow::Result<Vec<Case>> {
    let authz = std::fs::read(e2e::paths::filter_artifact("authz.wasm")?)?;
    let authz_fixtures = (0..10)
        .map(|i| match i % 3 {
            0 => fixture(format!("{i}: no key"), None, 401),
            1 => fixture(format!("{i}: unknown key"), Some("nope"), 403),
            _ => fixture(format!("{i}: allowed"), Some("k1"), 200),
        })
        .collect();
    let generated = generated_module();
    Ok(vec![
        Case {
            label: format!("authz, {} KB", authz.len() / 1024),
            wasm: authz,
            config: br#"{"api_keys": ["k1"]}"#.to_vec(),
            fixtures: authz_fixtures,
        },
        Case {
            label: format!("generated, {} KB", generated.len() / 1024),
            wasm: generated,
            config: b"{}".to_vec(),
            fixtures: (0..10)
                .map(|i| fixture(format!("{i}"), None, 200))
                .collect(),
        },
    ])
}

/// Median total and validation ms over [`RUNS`]; `cold` makes a new engine for each run.
fn median_ms(case: &Case, cold: bool) -> anyhow::Result<(f64, f64)> {
    let mut total = Vec::new();
    let mut compile = Vec::new();
    let shared = Preflight::new(Limits::default()).map_err(anyhow::Error::msg)?;
    for _ in 0..RUNS {
        let started = Instant::now();
        let fresh;
        let preflight = if cold {
            fresh = Preflight::new(Limits::default()).map_err(anyhow::Error::msg)?;
            &fresh
        } else {
            &shared
        };
        let report = preflight
            .run("bench", &case.wasm, &case.config, &case.fixtures, None)
            .map_err(|e| anyhow::anyhow!("{}: {e}", case.label))?;
        total.push(started.elapsed());
        compile.push(Duration::from_secs_f64(report.compile_ms / 1000.0));
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    Ok((median(total), median(compile)))
}

/// How long the default fuel budget takes to stop an infinite loop in `on_configure`.
fn loop_rejection_rows() -> anyhow::Result<String> {
    let looping = wat::parse_str(proxy_wasm_wat(
        "(i32.const 1)",
        "(loop $l (br $l)) (i32.const 1)",
        "(i32.const 0)",
        "",
    ))?;
    let preflight = Preflight::new(Limits::default()).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let refused = preflight.run("loop", &looping, b"{}", &[], None).is_err();
    anyhow::ensure!(refused, "the looping module must be refused");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let fuel = Limits::default().fuel_per_call;
    Ok(format!(
        "| infinite loop in on_configure (refused at {fuel} fuel) | cold | {ms:.1} | - |\n"
    ))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let append = args
        .iter()
        .position(|a| a == "--append")
        .and_then(|i| args.get(i + 1));
    let mut table = String::from(
        "| module | engine | pre-flight median ms | of which validation ms |\n|---|---|---|---|\n",
    );
    for case in cases()? {
        for cold in [true, false] {
            let (total, compile) = median_ms(&case, cold)?;
            let engine = if cold { "cold (new)" } else { "warm (reused)" };
            table.push_str(&format!(
                "| {} | {engine} | {total:.1} | {compile:.1} |\n",
                case.label
            ));
        }
    }
    table.push_str(&loop_rejection_rows()?);
    println!("{table}");
    if let Some(path) = append {
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        std::io::Write::write_all(&mut file, format!("\n{table}").as_bytes())?;
    }
    Ok(())
}
