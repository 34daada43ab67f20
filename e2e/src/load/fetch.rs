//! What a simulated node does as a host with `meshplug agent` would: fetch each remote module
//! it is sent from the artifact service (once per sha), check its sha256, and only then ACK.
//! A fetch that fails or does not match is retried a few times, then refused upstream as the
//! agent refuses it.
//!
//! One process holds the whole simulated fleet's ADS connections, so its fetches share
//! [`MAX_FETCHES`] connections (a real fleet opens one per host; the artifact service bounds
//! the bodies it streams either way).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use meshplug::ecds::remote_module;
use meshplug::store::sha256_hex;
use xds::proto::DiscoveryResponse;

/// Fetches in flight from the simulator at once.
pub const MAX_FETCHES: usize = 512;

/// The HTTP client the fleet shares.
#[derive(Debug, Clone)]
pub struct Fetching {
    http: reqwest::Client,
    turns: Arc<Semaphore>,
}

impl Fetching {
    /// A client for the whole fleet.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(MAX_FETCHES)
            .build()?;
        Ok(Self {
            http,
            turns: Arc::new(Semaphore::new(MAX_FETCHES)),
        })
    }

    /// Fetches and checks every remote module of `response` not in `have`; the bytes fetched,
    /// or why not.
    pub async fn fetch_all(
        &self,
        response: &DiscoveryResponse,
        have: &mut HashSet<String>,
    ) -> Result<usize, String> {
        let mut bytes = 0;
        for resource in &response.resources {
            let Some(module) = remote_module(resource).map_err(|e| e.to_string())? else {
                continue;
            };
            if have.contains(&module.sha256) {
                continue;
            }
            bytes += self.fetch_one(&module.uri, &module.sha256).await?;
            have.insert(module.sha256);
        }
        Ok(bytes)
    }

    async fn fetch_one(&self, uri: &str, sha: &str) -> Result<usize, String> {
        let _turn = self.turns.acquire().await.map_err(|e| e.to_string())?;
        let mut last = String::new();
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt.min(3))).await;
            }
            match self.http.get(uri).send().await {
                Ok(reply) if reply.status().is_success() => match reply.bytes().await {
                    Ok(body) if sha256_hex(&body) == sha => return Ok(body.len()),
                    Ok(body) => last = format!("sha256 mismatch ({} bytes)", body.len()),
                    Err(err) => last = err.to_string(),
                },
                Ok(reply) => last = format!("HTTP {}", reply.status()),
                Err(err) => last = err.to_string(),
            }
        }
        Err(format!("GET {uri}: {last}"))
    }
}
