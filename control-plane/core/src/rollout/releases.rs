//! A new version of a plugin arrives: it starts a rollout, waits behind the one in progress,
//! supersedes it, or (the last good version published again) cancels it. A quarantined
//! version is refused. A pure step over [`Rollouts`], returning [`Effects`].

use super::effects::Effects;
use super::error::RolloutError;
use super::lifecycle::{Rollouts, decision};
use super::progress::promote_if_settled;
use super::record::Release;
use super::world::World;

/// What the engine's `release` did with a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// A rollout began.
    Started,
    /// It waits for the rollout in progress.
    Queued,
    /// It is already the last good, the rollout's target or the queued version.
    Unchanged,
}

/// Takes `release` of `plugin` in.
pub fn release(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    plugin: &str,
    release: Release,
    now_ms: u64,
    fx: &mut Effects,
) -> Result<ReleaseOutcome, RolloutError> {
    if let Some(q) = rollouts.quarantine_of(plugin, &release.version) {
        return Err(RolloutError::quarantined(
            plugin,
            &release.version,
            &q.reason,
        ));
    }
    let record = rollouts.records.entry(plugin.to_string()).or_default();
    let reverts = record.rollout.is_some()
        && record
            .last_good
            .as_ref()
            .is_some_and(|g| g.version == release.version);
    if reverts {
        rollouts.cancel(
            plugin,
            "the last good version was published again",
            now_ms,
            fx,
        );
        return Ok(ReleaseOutcome::Unchanged);
    }
    let known = [
        record.last_good.as_ref(),
        record.rollout.as_ref().map(|r| &r.to),
        record.queued.as_ref(),
    ];
    if known.iter().flatten().any(|r| r.version == release.version) {
        return Ok(ReleaseOutcome::Unchanged);
    }
    if record.rollout.is_some() && world.plugin_policy(plugin).supersede {
        // A version every proxy already ACKed, with nothing left to judge, is live: it
        // becomes the last good one rather than being cancelled (the next tick would have
        // promoted it anyway).
        if !promote_if_settled(rollouts, world, plugin, now_ms, fx) {
            // The superseded version's proxies are served once the new rollout is in place
            // (effects are applied after the whole step), so none of them is sent the last
            // good version in between.
            let reason = format!("superseded by {}", release.version);
            rollouts.cancel(plugin, &reason, now_ms, fx);
        }
        rollouts.start(world, plugin, release, now_ms, fx);
        return Ok(ReleaseOutcome::Started);
    }
    if let Some(rollout) = &record.rollout {
        let replaced = record.queued.replace(release.clone());
        let reason = match replaced {
            Some(old) => format!(
                "queued behind {}; replaces queued {}",
                rollout.id, old.version
            ),
            None => format!("queued behind {}", rollout.id),
        };
        let mut entry = decision(plugin, rollout, "queue", reason, now_ms);
        entry.to.clone_from(&release.version);
        fx.save = true;
        fx.log(entry);
        return Ok(ReleaseOutcome::Queued);
    }
    rollouts.start(world, plugin, release, now_ms, fx);
    Ok(ReleaseOutcome::Started)
}

#[cfg(test)]
mod tests;
