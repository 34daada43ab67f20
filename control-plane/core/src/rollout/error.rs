use thiserror::Error;

/// Why a rollout step or command was refused.
#[derive(Debug, Error)]
pub enum RolloutError {
    /// A version that failed a rollout is not pushed again until an operator retries it.
    #[error(
        "{plugin}: version {version} is quarantined after a failed rollout ({reason}); lift it with `meshplug retry {plugin} {short}`",
        short = version.get(..12).unwrap_or(version)
    )]
    Quarantined {
        /// The filter.
        plugin: String,
        /// The version label.
        version: String,
        /// Why it was quarantined.
        reason: String,
    },
    /// A rollout command or policy was refused.
    #[error("rollout: {0}")]
    Refused(String),
}

impl RolloutError {
    /// `version` of `plugin` is quarantined for `reason`: the one message for it.
    pub fn quarantined(plugin: &str, version: &str, reason: &str) -> Self {
        Self::Quarantined {
            plugin: plugin.to_string(),
            version: version.to_string(),
            reason: reason.to_string(),
        }
    }
}
