//! Manual controls: pause, resume, promote (a step or all the way), roll back, and retry a
//! quarantined version. Each is logged like any other decision.

use serde::{Deserialize, Serialize};

use super::decide::Gate;
use super::engine::Engine;
use super::progress::decision;
use super::state::Paused;
use crate::Error;

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

impl Engine {
    /// Carries out `command` for `plugin`; says what was done.
    pub fn command(
        &mut self,
        plugin: &str,
        command: Command,
        now_ms: u64,
    ) -> Result<String, Error> {
        if let Command::Retry { version } = &command {
            return self.retry(plugin, version, now_ms);
        }
        let Some(mut rollout) = self.plugins.get(plugin).and_then(|p| p.rollout.clone()) else {
            return Err(Error::Rollout(format!("{plugin}: no rollout in progress")));
        };
        let policy = self.plugin_policy(plugin).clone();
        match command {
            Command::Pause => {
                rollout.paused = Some(Paused {
                    reason: "paused by an operator".into(),
                    manual: true,
                });
                self.append(decision(
                    plugin,
                    &rollout,
                    "pause",
                    "paused by an operator".into(),
                    now_ms,
                ));
                if let Some(record) = self.plugins.get_mut(plugin) {
                    record.rollout = Some(rollout);
                }
                self.save_plugins()?;
                Ok(format!("{plugin}: paused"))
            }
            Command::Resume => {
                rollout.paused = None;
                self.append(decision(
                    plugin,
                    &rollout,
                    "resume",
                    "resumed by an operator".into(),
                    now_ms,
                ));
                if let Some(record) = self.plugins.get_mut(plugin) {
                    record.rollout = Some(rollout);
                }
                self.save_plugins()?;
                Ok(format!("{plugin}: resumed"))
            }
            Command::Promote { full: true } => {
                self.promote(plugin, rollout, "promoted by an operator".into(), now_ms)?;
                Ok(format!("{plugin}: promoted"))
            }
            Command::Promote { full: false } => {
                let stage = rollout.stage;
                self.advance(
                    plugin,
                    rollout,
                    &policy,
                    "stage passed by an operator".into(),
                    now_ms,
                )?;
                Ok(format!("{plugin}: {stage:?} passed"))
            }
            Command::Rollback => {
                self.rollback(
                    plugin,
                    rollout,
                    Gate::Manual,
                    "rolled back by an operator".into(),
                    now_ms,
                )?;
                Ok(format!("{plugin}: rolled back"))
            }
            Command::Retry { .. } => unreachable_retry(),
        }
    }

    fn retry(&mut self, plugin: &str, version: &str, now_ms: u64) -> Result<String, Error> {
        let record = self
            .plugins
            .get_mut(plugin)
            .ok_or_else(|| Error::Rollout(format!("{plugin}: unknown filter")))?;
        let matches: Vec<String> = record
            .quarantine
            .iter()
            .filter(|(label, q)| *label == version || q.release.sha256.starts_with(version))
            .map(|(label, _)| label.clone())
            .collect();
        let label = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::Rollout(format!(
                    "{plugin}: no quarantined version matches {version}"
                )));
            }
            _ => {
                return Err(Error::Rollout(format!(
                    "{plugin}: {version} matches {} quarantined versions; give more of it",
                    matches.len()
                )));
            }
        };
        let quarantined = record.quarantine.remove(&label).map(|q| q.release);
        self.save_plugins()?;
        let Some(release) = quarantined else {
            return Err(Error::Rollout(format!("{plugin}: {label} vanished")));
        };
        tracing::info!(plugin = %plugin, version = %label, "quarantine lifted by an operator");
        let outcome = self.release(plugin, release, now_ms)?;
        Ok(format!(
            "{plugin}: {label} released from quarantine: {outcome:?}"
        ))
    }
}

fn unreachable_retry() -> Result<String, Error> {
    Err(Error::Rollout("retry is handled before".into()))
}
