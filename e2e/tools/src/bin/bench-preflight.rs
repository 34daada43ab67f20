//! `make bench` (pre-flight part): time of one whole pre-flight (compile, instantiate, VM start,
//! configure, 10 fixtures) for the ~170 KB `authz` build and a generated ~2 MB module, with
//! Cranelift and Winch, without and with wasmtime's module cache (warm). Median of 7 runs, in
//! one process; `--append FILE` adds the table to FILE.

use std::time::{Duration, Instant};

use meshplug_preflight::testing::proxy_wasm_wat;
use meshplug_preflight::{Expectation, Fixture, FixtureRequest, Limits, Preflight, Strategy};

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

fn median_ms(preflight: &Preflight, case: &Case) -> anyhow::Result<(f64, f64)> {
    let mut total = Vec::new();
    let mut compile = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
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
    let mut rows = String::new();
    for (compiler, strategy) in [
        ("Cranelift", Strategy::Cranelift),
        ("Winch", Strategy::Winch),
    ] {
        let preflight = Preflight::with_options(Limits::default(), strategy, None)
            .map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let refused = preflight.run("loop", &looping, b"{}", &[], None).is_err();
        anyhow::ensure!(refused, "the looping module must be refused");
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let fuel = Limits::default().fuel_per_call;
        rows.push_str(&format!("| infinite loop in on_configure (refused at {fuel} fuel) | {compiler} | off | {ms:.1} | - |\n"));
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let append = args
        .iter()
        .position(|a| a == "--append")
        .and_then(|i| args.get(i + 1));
    let cache_dir = tempfile::tempdir()?;
    let mut table = String::from(
        "| module | compiler | module cache | pre-flight median ms | of which compile ms |\n|---|---|---|---|---|\n",
    );
    for case in cases()? {
        for (compiler, strategy) in [
            ("Cranelift", Strategy::Cranelift),
            ("Winch", Strategy::Winch),
        ] {
            for cached in [false, true] {
                let dir = cached.then(|| cache_dir.path().join(compiler));
                let preflight =
                    Preflight::with_options(Limits::default(), strategy, dir.as_deref())
                        .map_err(anyhow::Error::msg)?;
                let (total, compile) = median_ms(&preflight, &case)?;
                let cache = if cached { "on (warm)" } else { "off" };
                table.push_str(&format!(
                    "| {} | {compiler} | {cache} | {total:.1} | {compile:.1} |\n",
                    case.label
                ));
            }
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
