//! The engine's clock: a tick every 100 ms (looks, pending effects, the alive mark, node saves)
//! and, once a second, proxies disconnected too long are forgotten.

use std::sync::{Arc, Mutex, PoisonError};

use crate::ingest::unix_ms;
use crate::rollout::Engine;

/// How often the rollout engine looks at its rollouts.
const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Ticks `engine` until `stop`.
pub(super) async fn tick_rollouts(
    engine: Arc<Mutex<Engine>>,
    forget_after: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = unix_ms();
                let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
                engine.tick(now);
                if now >= last_sweep + SWEEP_MS {
                    last_sweep = now;
                    let forget_ms = u64::try_from(forget_after.as_millis()).unwrap_or(u64::MAX);
                    let gone = engine.forget_disconnected(now, forget_ms);
                    drop(engine);
                    if !gone.is_empty() {
                        tracing::info!(nodes = gone.len(), "forgot proxies disconnected too long");
                    }
                }
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// How often disconnected proxies are looked for.
const SWEEP_MS: u64 = 1000;
