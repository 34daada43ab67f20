//! A follower's proxies' stats flushes, sent to the leader every half second (the leader's
//! traffic and restart gates judge them as its own). A flush that cannot be delivered (no
//! leader, or the leader unreachable) is dropped and counted: the leader sees a gap, as for
//! a proxy whose flush was lost.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch::Receiver;

use super::{Replica, ReplicaParts};
use crate::rollout::engine::RelayedFlush;

/// How often the outbox is sent.
const EVERY: Duration = Duration::from_millis(500);

/// The body of `POST /api/v1/replicas/flushes`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Flushes {
    /// The follower that received them.
    pub from: String,
    /// The flushes, oldest first.
    pub flushes: Vec<RelayedFlush>,
}

/// Sends the outbox to the leader until `stop`.
pub(super) async fn run(replica: Arc<Replica>, parts: ReplicaParts, mut stop: Receiver<bool>) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        let (flushes, dropped) = {
            let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
            engine.take_relayed()
        };
        replica.metrics.relay_dropped(dropped);
        if flushes.is_empty() {
            continue;
        }
        let count = flushes.len() as u64;
        let leader = replica.leader_admin();
        let result = match leader {
            Some(url) => send(&parts, &url, &replica.id, flushes).await,
            None => Err("nobody leads".to_string()),
        };
        match result {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("relaying stats flushes to the leader again");
                }
            }
            Err(reason) => {
                replica.metrics.relay_dropped(count);
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%reason, "stats flushes for the leader dropped until it answers");
                }
            }
        }
    }
}

async fn send(
    parts: &ReplicaParts,
    leader: &str,
    me: &str,
    flushes: Vec<RelayedFlush>,
) -> Result<(), String> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(tls) = &parts.peer_tls {
        builder = tls.reqwest(builder).map_err(|e| e.to_string())?;
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let url = format!("{}/api/v1/replicas/flushes", leader.trim_end_matches('/'));
    let mut request = client.post(&url).json(&Flushes {
        from: me.to_string(),
        flushes,
    });
    if let Some(token) = &parts.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: HTTP {}", response.status()))
    }
}
