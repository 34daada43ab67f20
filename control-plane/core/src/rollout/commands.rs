//! Manual controls: pause, resume, promote (a step or all the way), roll back, and retry a
//! quarantined version. Each is logged like any other decision. Pure steps over
//! [`Rollouts`], returning [`Effects`].

use serde::{Deserialize, Serialize};

use super::decide::Gate;
use super::effects::Effects;
use super::error::RolloutError;
use super::lifecycle::{Rollouts, decision};
use super::record::Paused;
use super::releases::{ReleaseOutcome, release};
use super::world::World;

/// A person's instruction about a filter's rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Command {
    /// Stop advancing; the hard gates keep watching.
    Pause,
    /// Lift a pause.
    Resume,
    /// Pass the current stage now, or (`full`) promote at once.
    Promote {
        /// Skip every remaining stage.
        #[serde(default)]
        full: bool,
    },
    /// Put the last good version back and quarantine the new one.
    Rollback,
    /// Lift the quarantine of a version (label or sha256 prefix) and roll it out again.
    Retry {
        /// The version label or a prefix of its sha256.
        version: String,
    },
}

/// Carries out `command` for `plugin`; says what was done.
pub fn command(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    plugin: &str,
    command: Command,
    now_ms: u64,
    fx: &mut Effects,
) -> Result<String, RolloutError> {
    if let Command::Retry { version } = &command {
        return retry(rollouts, world, plugin, version, now_ms, fx);
    }
    let Some(mut rollout) = rollouts.rollout(plugin) else {
        return Err(RolloutError::Refused(format!(
            "{plugin}: no rollout in progress"
        )));
    };
    match command {
        Command::Pause => {
            let reason = "paused by an operator".to_string();
            rollout.paused = Some(Paused {
                reason: reason.clone(),
                manual: true,
            });
            fx.log(decision(plugin, &rollout, "pause", reason, now_ms));
            rollouts.store(plugin, rollout, fx);
            Ok(format!("{plugin}: paused"))
        }
        Command::Resume => {
            rollout.paused = None;
            let reason = "resumed by an operator".into();
            fx.log(decision(plugin, &rollout, "resume", reason, now_ms));
            rollouts.store(plugin, rollout, fx);
            Ok(format!("{plugin}: resumed"))
        }
        Command::Promote { full: true } => {
            let reason = "promoted by an operator".into();
            rollouts.promote(world, plugin, rollout, reason, now_ms, fx);
            Ok(format!("{plugin}: promoted"))
        }
        Command::Promote { full: false } => {
            let stage = rollout.stage;
            let reason = "stage passed by an operator".into();
            rollouts.advance(world, plugin, rollout, reason, now_ms, fx);
            Ok(format!("{plugin}: {stage:?} passed"))
        }
        Command::Rollback => {
            let reason = "rolled back by an operator".into();
            rollouts.rollback(world, plugin, rollout, (Gate::Manual, reason), now_ms, fx);
            Ok(format!("{plugin}: rolled back"))
        }
        Command::Retry { .. } => Err(RolloutError::Refused("retry is handled before".into())),
    }
}

fn retry(
    rollouts: &mut Rollouts,
    world: &World<'_>,
    plugin: &str,
    version: &str,
    now_ms: u64,
    fx: &mut Effects,
) -> Result<String, RolloutError> {
    let record = rollouts
        .records
        .get_mut(plugin)
        .ok_or_else(|| RolloutError::Refused(format!("{plugin}: unknown filter")))?;
    let matches: Vec<String> = record
        .quarantine
        .iter()
        .filter(|(label, q)| *label == version || q.release.sha256.starts_with(version))
        .map(|(label, _)| label.clone())
        .collect();
    let label = match matches.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(RolloutError::Refused(format!(
                "{plugin}: no quarantined version matches {version}"
            )));
        }
        _ => {
            return Err(RolloutError::Refused(format!(
                "{plugin}: {version} matches {} quarantined versions; give more of it",
                matches.len()
            )));
        }
    };
    let Some(lifted) = record.quarantine.remove(&label) else {
        return Err(RolloutError::Refused(format!("{plugin}: {label} vanished")));
    };
    fx.save = true;
    tracing::info!(plugin = %plugin, version = %label, "quarantine lifted by an operator");
    let outcome: ReleaseOutcome = release(rollouts, world, plugin, lifted.release, now_ms, fx)?;
    Ok(format!(
        "{plugin}: {label} released from quarantine: {outcome:?}"
    ))
}
