//! The authorization decision, independent of any proxy.

use std::collections::BTreeSet;

use serde::Deserialize;

/// The plugin configuration, as JSON:
/// `{"header": "x-api-key", "api_keys": ["k1", "k2"]}`. `header` defaults to `x-api-key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// The request header that carries the key (lower case).
    #[serde(default = "default_header")]
    pub header: String,
    /// The keys that are allowed.
    pub api_keys: BTreeSet<String>,
}

fn default_header() -> String {
    "x-api-key".to_string()
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid authz configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses and checks the configuration.
pub fn parse_config(bytes: &[u8]) -> Result<AuthzConfig, ConfigError> {
    let mut config: AuthzConfig =
        serde_json::from_slice(bytes).map_err(|err| ConfigError(err.to_string()))?;
    config.header = config.header.trim().to_ascii_lowercase();
    if config.header.is_empty() {
        return Err(ConfigError("header must not be empty".into()));
    }
    if config.api_keys.iter().any(|key| key.is_empty()) {
        return Err(ConfigError("api_keys must not contain an empty key".into()));
    }
    Ok(config)
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Answer locally.
    Deny {
        /// HTTP status.
        status: u16,
        /// Plain-text body.
        body: &'static str,
    },
}

/// Decides on a request from the value of the key header, if any.
pub fn decide(config: &AuthzConfig, key: Option<&str>) -> Decision {
    match key.map(str::trim) {
        None | Some("") => Decision::Deny {
            status: 401,
            body: "missing API key\n",
        },
        Some(key) if config.api_keys.contains(key) => Decision::Allow,
        Some(_) => Decision::Deny {
            status: 403,
            body: "API key not allowed\n",
        },
    }
}

#[cfg(test)]
mod tests;
