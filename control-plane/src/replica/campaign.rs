//! The campaign: this replica leads when it wins, and follows again when it loses the lease or
//! etcd fences one of its writes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use meshplug_replicas::Leadership;
use tokio::sync::Notify;
use tokio::sync::watch::{Receiver, Sender};

use super::{Replica, ReplicaParts};
use crate::Error;
use crate::ingest::unix_ms;
use crate::rollout::engine::Role;
use crate::rollout::state::RolloutStore;
use crate::rollout::state::etcd::EtcdState;

/// How often a leader looks whether it lost the lease or had a write fenced.
const LOOK: Duration = Duration::from_millis(100);

/// Campaigns, leads, steps down, and campaigns again, until `stop`.
pub(super) async fn run(
    replica: Arc<Replica>,
    parts: ReplicaParts,
    (leading, remirror): (Sender<bool>, Arc<Notify>),
    mut stop: Receiver<bool>,
) {
    loop {
        // On the etcd runtime, so the leader lease's keep-alive runs there (see `join`).
        let (etcd, id, lease) = (replica.etcd.clone(), replica.id.clone(), replica.lease);
        let mut campaign = replica
            .runtime
            .handle()
            .spawn(async move { etcd.campaign(&id, lease).await });
        let leadership = tokio::select! {
            won = &mut campaign => won,
            _ = stop.changed() => {
                campaign.abort();
                return;
            }
        };
        let leadership = match leadership {
            Ok(Ok(leadership)) => Arc::new(leadership),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "campaign failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "campaign failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = take_lead(&replica, &parts, &leadership) {
            tracing::error!(term = leadership.term(), error = %err,
                "could not take the lead: resigning");
            resign(leadership).await;
            continue;
        }
        let _ = leading.send(true);
        let stopped = hold(&replica, &leadership, &mut stop).await;
        let _ = leading.send(false);
        step_down(&replica, &parts);
        remirror.notify_one();
        if stopped {
            resign(leadership).await;
            return;
        }
    }
}

/// The engine leads through a fenced store of `leadership`.
fn take_lead(
    replica: &Replica,
    parts: &ReplicaParts,
    leadership: &Arc<Leadership>,
) -> Result<(), Error> {
    let runtime = replica.runtime.handle();
    let store = EtcdState::leading_on(
        replica.etcd.clone(),
        Arc::clone(leadership),
        &replica.id,
        runtime,
    )?
    .with_membership(Arc::clone(&replica.membership))
    .with_call_timeout(replica.lease)
    .counting_fenced(Arc::clone(&replica.fenced))
    .archiving(&parts.archive, crate::rollout::state::etcd::RECENT)?;
    let records = store.load_plugins()?;
    let missing = tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        handle.block_on(gather_artifacts(replica, parts, &records))
    });
    for (sha, kind) in &missing {
        tracing::error!(%sha, ?kind, "leading without an artifact the rollout state names: \
            no peer and no file in the folder has it; proxies that must load it will refuse it");
    }
    let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
    engine.lead(Box::new(store), unix_ms())?;
    drop(engine);
    replica.set_role(Role::Leader);
    replica.metrics.leadership_changed(true);
    tracing::info!(replica = %replica.id, term = leadership.term(), "leading: decisions are taken here");
    Ok(())
}

/// Fetches the artifacts `records` name that this replica lacks, from peers, then from its
/// folder; returns those still missing.
async fn gather_artifacts(
    replica: &Replica,
    parts: &ReplicaParts,
    records: &std::collections::BTreeMap<String, crate::rollout::state::PluginRecord>,
) -> std::collections::BTreeMap<String, crate::artifact::ArtifactKind> {
    let fetcher = crate::agent::Fetcher::with_tls(
        parts.store.dir(),
        None,
        parts.max_artifact_bytes,
        parts.peer_tls.clone(),
    );
    let peers: Vec<String> = {
        let view = replica.view.read().unwrap_or_else(PoisonError::into_inner);
        let others = view.members.values().filter(|m| m.id != replica.id);
        super::artifacts::peers(others, None)
    };
    let releases = super::artifacts::served(records);
    let missing = match &fetcher {
        Ok(fetcher) => super::artifacts::fetch(releases, &peers, fetcher).await,
        Err(_) => releases.map(|r| (r.sha256.clone(), r.kind)).collect(),
    };
    let missing: std::collections::BTreeMap<_, _> = missing
        .into_iter()
        .filter(|(sha, kind)| !parts.store.path_for(sha, *kind).is_file())
        .collect();
    super::artifacts::from_folder(&parts.folder, &parts.store, missing)
}

/// Waits until the leadership is lost (the lease, or a fenced write) or `stop`; says which.
async fn hold(replica: &Replica, leadership: &Leadership, stop: &mut Receiver<bool>) -> bool {
    let fenced_before = replica.fenced.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            () = tokio::time::sleep(LOOK) => {}
            _ = stop.changed() => return true,
        }
        if leadership.is_lost() {
            tracing::warn!(replica = %replica.id, term = leadership.term(),
                "the leader lease was lost: following");
            return false;
        }
        if replica.fenced.load(Ordering::Relaxed) > fenced_before {
            tracing::warn!(replica = %replica.id, term = leadership.term(),
                "etcd fenced a write of this term: following");
            return false;
        }
    }
}

/// The engine follows again at once, its store reduced to this replica's own keys (nothing
/// is read from etcd here: it may be the reason the lease was lost). The decisions it knows
/// stay; the watch brings the rest.
fn step_down(replica: &Replica, parts: &ReplicaParts) {
    let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
    let known = engine.decisions().unwrap_or_default();
    engine.follow(Box::new(
        replica.empty_follower_store(&parts.archive).knowing(known),
    ));
    drop(engine);
    replica.set_role(Role::Follower);
    replica.metrics.leadership_changed(false);
}

async fn resign(leadership: Arc<Leadership>) {
    match Arc::try_unwrap(leadership) {
        Ok(leadership) => {
            if let Err(err) = leadership.resign().await {
                tracing::warn!(error = %err, "resigning");
            }
        }
        // The store still holds it (a store being dropped): the lease lapses by itself.
        Err(leadership) => leadership.stop_keepalive(),
    }
}
