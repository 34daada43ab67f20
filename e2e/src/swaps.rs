//! Hot-swap measurement helpers for the benchmarks: builds that are new on every swap, and
//! polling through Envoy until the new build answers.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::mesh::TEST_API_KEY;

/// How long one swap may take.
pub const SWAP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds A and B of `authz`.
#[derive(Debug)]
pub struct Builds {
    /// Build A.
    pub a: Vec<u8>,
    /// Build B.
    pub b: Vec<u8>,
}

impl Builds {
    /// The `n`th swap's module: A for odd n, B for even n, made unique by a custom section.
    pub fn unique(&self, n: usize) -> (Vec<u8>, &'static str) {
        let (base, tag) = if n.is_multiple_of(2) {
            (&self.b, "authz/b")
        } else {
            (&self.a, "authz/a")
        };
        let name = b"meshplug-bench";
        let payload = format!("{n:08}");
        let mut section = vec![name.len() as u8];
        section.extend_from_slice(name);
        section.extend_from_slice(payload.as_bytes());
        let mut module = base.clone();
        module.push(0); // custom section id
        module.push(section.len() as u8);
        module.extend_from_slice(&section);
        (module, tag)
    }
}

/// Polls `url` until a response carries `tag`; the time since `started`.
pub async fn wait_for_tag(
    http: &reqwest::Client,
    url: &str,
    tag: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let response = http.get(url).header("x-api-key", TEST_API_KEY).send().await;
        if let Ok(response) = response {
            let served = response.headers().get("x-meshplug-filter").cloned();
            let _ = response.bytes().await;
            if served.as_ref().and_then(|v| v.to_str().ok()) == Some(tag) {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > SWAP_TIMEOUT {
            bail!("{url} never served {tag} within {SWAP_TIMEOUT:?}");
        }
    }
}

/// A duration in ms.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// min, median, p99 and max, in ms.
pub fn summary(samples: &[Duration]) -> [f64; 4] {
    let mut sorted: Vec<Duration> = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    [
        ms(sorted[0]),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(sorted[sorted.len() - 1]),
    ]
}

/// Per-swap differences `ours - theirs` in ms (same build, paired): median, p90 and max.
pub fn paired(ours: &[Duration], theirs: &[Duration]) -> [f64; 3] {
    let mut sorted: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(o, t)| ms(*o) - ms(*t))
        .collect();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    [at(0.5), at(0.9), sorted[sorted.len() - 1]]
}
