//! A load generator that sends a fixed number of requests at a fixed rate (below saturation),
//! for measuring what each request costs the proxy rather than how many it can take. Requests
//! go out in bursts, one on each connection at once, so the proxy handles a burst per wake-up
//! as it does under real load (one request at a time, each wake-up and its system calls cost
//! far more than a filter on this machine's virtual CPUs, and vary more). Latency is counted
//! from when a request was due, not when it was sent, so a stall is not hidden.

use std::time::{Duration, Instant};

use crate::HarnessError;

/// What one paced run saw.
#[derive(Debug, Clone, Default)]
pub struct PacedReport {
    /// Requests answered.
    pub answered: u64,
    /// Answers with a status other than the one expected.
    pub unexpected: u64,
    /// Requests that failed on the way (connection, timeout).
    pub errors: u64,
    /// Each answered request's latency from when it was due, in µs, sorted.
    pub latencies_us: Vec<u64>,
}

impl PacedReport {
    /// The `q`-quantile (0..=1) of the latencies, in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let Some(last) = self.latencies_us.len().checked_sub(1) else {
            return 0.0;
        };
        let index = ((last as f64) * q).round() as usize;
        self.latencies_us[index.min(last)] as f64 / 1000.0
    }
}

/// What to send, how much and how fast.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Requests in all.
    pub total: u64,
    /// Requests per second, all connections together.
    pub rate: f64,
    /// Keep-alive connections, each sending its share in turn: a burst is one request on each.
    pub connections: u64,
    /// The status every answer should have.
    pub expect_status: u16,
}

/// Sends `pace.total` GETs to `url` with `headers` at `pace.rate`.
pub async fn paced(
    url: &str,
    headers: &[(&str, &str)],
    pace: &Pace,
) -> Result<PacedReport, HarnessError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| HarnessError::NotReady(format!("header {name}: {e}")))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|e| HarnessError::NotReady(format!("header value {value}: {e}")))?;
        map.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(map)
        .pool_max_idle_per_host(pace.connections as usize)
        .timeout(Duration::from_secs(5))
        .build()?;
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / pace.rate);
    let mut tasks = Vec::new();
    for lane in 0..pace.connections {
        let (client, url, pace) = (client.clone(), url.to_string(), pace.clone());
        tasks.push(tokio::spawn(async move {
            lane_run(&client, &url, &pace, (lane, start, interval)).await
        }));
    }
    let mut report = PacedReport::default();
    for task in tasks {
        let lane = task
            .await
            .map_err(|e| HarnessError::NotReady(format!("load task: {e}")))?;
        report.answered += lane.answered;
        report.unexpected += lane.unexpected;
        report.errors += lane.errors;
        report.latencies_us.extend(lane.latencies_us);
    }
    report.latencies_us.sort_unstable();
    Ok(report)
}

/// One connection's share: requests `lane`, `lane + connections`, … each sent when due (with
/// the rest of its burst).
async fn lane_run(
    client: &reqwest::Client,
    url: &str,
    pace: &Pace,
    (lane, start, interval): (u64, tokio::time::Instant, Duration),
) -> PacedReport {
    let mut report = PacedReport::default();
    let mut n = lane;
    while n < pace.total {
        let due = start + interval.mul_f64((n - lane) as f64);
        tokio::time::sleep_until(due).await;
        match client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                report.answered += 1;
                report.unexpected += u64::from(status != pace.expect_status);
                let waited = Instant::now().saturating_duration_since(due.into_std());
                report.latencies_us.push(waited.as_micros() as u64);
            }
            Err(_) => report.errors += 1,
        }
        n += pace.connections;
    }
    report
}
