//! Steady background traffic through one Envoy, counted by status and by the filter build
//! that answered (`x-meshplug-filter`). Stopped on drop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Answers seen, by (filter tag, status).
pub type Tally = BTreeMap<(String, u16), u64>;

/// A few concurrent request loops against one URL.
#[derive(Debug)]
pub struct Traffic {
    tally: Arc<Mutex<Tally>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// Starts `workers` loops, each sending a GET to `url` then pausing `gap`.
    pub fn start(url: String, workers: usize, gap: Duration) -> Self {
        let tally = Arc::new(Mutex::new(Tally::new()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let tasks = (0..workers)
            .map(|_| {
                let (tally, client, url) = (Arc::clone(&tally), client.clone(), url.clone());
                tokio::spawn(async move {
                    loop {
                        let key = match client.get(&url).send().await {
                            Ok(answer) => {
                                let tag = answer
                                    .headers()
                                    .get("x-meshplug-filter")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("-")
                                    .to_string();
                                let status = answer.status().as_u16();
                                let _ = answer.bytes().await;
                                (tag, status)
                            }
                            Err(_) => ("connection-error".to_string(), 0),
                        };
                        *tally
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .entry(key)
                            .or_default() += 1;
                        tokio::time::sleep(gap).await;
                    }
                })
            })
            .collect();
        Self { tally, tasks }
    }

    /// The answers so far.
    pub fn tally(&self) -> Tally {
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
