//! Runs cases against a session: each case starts from the filters as given, its steps run in
//! order, and what differs is collected (a case goes on after a failed expectation, so the
//! report shows every difference; a failed swap ends it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use meshplug_preflight::{Case, CasesFile, Load, Send, Step, Swap, compare, config_text};

use super::send::{build, client, stat_diffs};
use super::session::Session;

/// What one case came to.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// Its name.
    pub name: String,
    /// Each difference between what was expected and what happened; empty: it passed.
    pub failures: Vec<String>,
    /// How long it took, s.
    pub seconds: f64,
    /// What the steps printed on the way (swaps, loads).
    pub notes: Vec<String>,
}

impl CaseResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every case of `file`; paths in swaps are relative to `base`.
pub async fn run_cases(session: &mut Session, file: &CasesFile, base: &Path) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for case in &file.cases {
        let started = Instant::now();
        let mut result = CaseResult {
            name: case.name.clone(),
            failures: Vec::new(),
            seconds: 0.0,
            notes: Vec::new(),
        };
        if let Err(problem) = case.check() {
            result.failures.push(problem);
        } else {
            reset(session, file, case, &mut result).await;
            if result.passed() {
                run_steps(session, case, base, &mut result).await;
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        results.push(result);
    }
    results
}

/// Every fake answers what the case (or the file) says, and the filters are as given.
async fn reset(session: &mut Session, file: &CasesFile, case: &Case, result: &mut CaseResult) {
    for (cluster, fake) in &session.fakes {
        let answer = case
            .upstream
            .clone()
            .or_else(|| file.upstreams.get(cluster).cloned())
            .unwrap_or_default();
        fake.reset(answer);
    }
    let initial = session.initial.clone();
    for (name, placed) in &initial {
        if let Err(err) = session.place(name, placed).await {
            result
                .failures
                .push(format!("putting {name} back as given: {err}"));
        }
    }
}

async fn run_steps(session: &mut Session, case: &Case, base: &Path, result: &mut CaseResult) {
    let addr = match session.listener(case.listener.as_deref()) {
        Ok(addr) => addr,
        Err(err) => return result.failures.push(err),
    };
    for (i, step) in case.steps().iter().enumerate() {
        let at = format!("step {}", i + 1);
        let outcome = match step {
            Step::Send(send) => send_step(session, addr, case.http2, send).await,
            Step::Swap(swap) => swap_step(session, swap, base).await.map(|note| {
                result.notes.push(note);
                Vec::new()
            }),
            Step::Load(load) => {
                load_step(session, addr, case.http2, load, base)
                    .await
                    .map(|note| {
                        result.notes.push(note.0);
                        note.1
                    })
            }
        };
        match outcome {
            Ok(diffs) => result
                .failures
                .extend(diffs.into_iter().map(|d| format!("{at}: {d}"))),
            Err(err) => {
                result.failures.push(format!("{at}: {err}"));
                return;
            }
        }
    }
}

/// One request: the differences from what it expects (status, headers, body, the upstream's
/// request, stats).
async fn send_step(
    session: &Session,
    addr: std::net::SocketAddr,
    http2: bool,
    send: &Send,
) -> Result<Vec<String>, String> {
    let before = match send.stats.is_empty() {
        true => Default::default(),
        false => session.stats().await?,
    };
    let log_from = std::fs::metadata(&session.envoy_log).map_or(0, |m| m.len());
    let outcome = session.send(addr, http2, &send.request).await?;
    let mut diffs = Vec::new();
    if let Err(diff) = compare(&send.expect, &outcome) {
        diffs.push(format!(
            "{diff}\n    got: status {}, headers {:?}, body {:?}",
            outcome.status, outcome.headers, outcome.body
        ));
    }
    if !send.stats.is_empty() {
        let after = session.stats().await?;
        diffs.extend(stat_diffs(&send.stats, &before, &after));
    }
    diffs.extend(session.missing_log_lines(log_from, &send.log).await);
    Ok(diffs)
}

async fn swap_step(session: &mut Session, swap: &Swap, base: &Path) -> Result<String, String> {
    let build = swap.build.as_ref().map(|build| base.join(build));
    let config = swap.config.as_ref().map(config_text);
    let started = Instant::now();
    session.swap(&swap.filter, build.as_deref(), config).await?;
    let running = session
        .current
        .get(&swap.filter)
        .map_or_else(String::new, |placed| placed.build.display().to_string());
    Ok(format!(
        "swapped {} to {running} in {} ms (Envoy ACKed it)",
        swap.filter,
        started.elapsed().as_millis()
    ))
}

/// Many requests over `connections` connections, with the swap once the load runs: every
/// connection sends its share and goes on until the swap is done, so the swap happens under
/// load. Every answer must be a 2xx.
async fn load_step(
    session: &mut Session,
    addr: std::net::SocketAddr,
    http2: bool,
    load: &Load,
    base: &Path,
) -> Result<(String, Vec<String>), String> {
    let swapping = Arc::new(AtomicBool::new(load.swap.is_some()));
    let workers = spawn_load(addr, http2, load, &swapping)?;
    let swapped = match &load.swap {
        Some(swap) => Some(swap_step(session, swap, base).await),
        None => None,
    };
    // Stopped before anything can return: the connections end once their share is sent.
    swapping.store(false, Ordering::Release);
    let mut statuses = Vec::new();
    for worker in workers {
        statuses.extend(worker.await.map_err(|e| e.to_string())??);
    }
    let swapped = swapped.transpose()?;
    let sent = format!(
        "{} requests over {} connections",
        statuses.len(),
        load.connections
    );
    let note = match swapped {
        Some(note) => format!("{sent}; {note}"),
        None => sent,
    };
    Ok((note, non_2xx(&statuses)))
}

type Worker = tokio::task::JoinHandle<Result<Vec<u16>, String>>;

/// One task per connection, each sending its share of `load` and going on while `swapping`.
fn spawn_load(
    addr: std::net::SocketAddr,
    http2: bool,
    load: &Load,
    swapping: &Arc<AtomicBool>,
) -> Result<Vec<Worker>, String> {
    let mut workers = Vec::new();
    for i in 0..load.connections {
        let share =
            load.requests / load.connections + u32::from(i < load.requests % load.connections);
        let client = client(http2)?;
        let request = load.request.clone();
        let swapping = Arc::clone(swapping);
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut sent = 0;
            while sent < share || swapping.load(Ordering::Acquire) {
                let status = match build(&client, addr, &request)?.send().await {
                    Ok(answer) => answer.status().as_u16(),
                    Err(_) => 0,
                };
                statuses.push(status);
                sent += 1;
            }
            Ok(statuses)
        }));
    }
    Ok(workers)
}

/// The difference a load reports: the answers that were not 2xx.
fn non_2xx(statuses: &[u16]) -> Vec<String> {
    let bad: Vec<u16> = statuses
        .iter()
        .copied()
        .filter(|s| !(200..300).contains(s))
        .collect();
    if bad.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} of {} requests were not 2xx (0 = no answer): {:?}",
        bad.len(),
        statuses.len(),
        &bad[..bad.len().min(10)]
    )]
}
