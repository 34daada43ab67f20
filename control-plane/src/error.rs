use std::path::PathBuf;

use thiserror::Error;

/// Everything that can fail in the control plane library.
#[derive(Debug, Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The agent could not fetch an artifact, or its bytes were not what the control plane
    /// said (a sha256 mismatch).
    #[error("GET {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The agent's ADS server failed.
    #[error("agent: {0}")]
    Agent(String),
    /// Translating to Envoy failed (a bootstrap template, say).
    #[error(transparent)]
    Envoy(#[from] meshplug_envoy::Error),
    /// Watching the artifacts folder failed.
    #[error("watching {path}: {source}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// The watcher's error.
        #[source]
        source: notify::Error,
    },
    /// Serving xDS failed.
    #[error(transparent)]
    Xds(#[from] xds::XdsError),
    /// The pre-flight sandbox could not be set up.
    #[error("pre-flight: {0}")]
    Preflight(String),
    /// A rollout step or command was refused (a quarantined version, say).
    #[error(transparent)]
    Rollout(#[from] meshplug_core::rollout::RolloutError),
    /// The admin API could not be reached or refused a call.
    #[error("admin API: {0}")]
    Admin(String),
    /// The saved rollout state cannot be used, and starting without it would lose data.
    #[error("{}", state_message(path, detail))]
    State {
        /// `state.json`.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A TLS certificate, key or CA did not load, or TLS flags do not fit together.
    #[error("TLS: {0}")]
    Tls(String),
    /// `meshplug pki` could not make a certificate.
    #[error("pki: {0}")]
    Pki(String),
    /// etcd (replicas) refused or could not be reached, or a stale leader's write was fenced.
    #[error(transparent)]
    Replicas(#[from] meshplug_replicas::Error),
    /// Replicas cannot be set up as asked (a bad `--store`, say).
    #[error("replicas: {0}")]
    NotReplicated(String),
    /// etcd did not answer a call in time.
    #[error("etcd did not answer within {0:?}")]
    EtcdTimeout(std::time::Duration),
    /// A decision was asked of a replica that does not lead (only the leader decides).
    #[error("this replica does not lead: {0}")]
    NotLeader(String),
    /// Encoding status for the admin API failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `meshplug test` could not set up what its cases run against (the Envoy configuration,
    /// the cases file, Envoy or the control plane): what, and why.
    #[error("{0}")]
    TestSetup(String),
}

impl Error {
    /// `version` of `plugin` is quarantined for `reason`: the one message for it.
    pub fn quarantined(plugin: &str, version: &str, reason: &str) -> Self {
        meshplug_core::rollout::RolloutError::quarantined(plugin, version, reason).into()
    }

    /// A rollout command or state change refused for `why`.
    pub fn rollout(why: impl Into<String>) -> Self {
        meshplug_core::rollout::RolloutError::Refused(why.into()).into()
    }

    /// Wraps an I/O error with what was being done and where.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

fn state_message(path: &std::path::Path, detail: &str) -> String {
    let data = path
        .parent()
        .and_then(std::path::Path::parent)
        .map_or_else(|| ".".into(), |d| d.display().to_string());
    format!(
        "rollout state {}: {detail}. Starting without it would forget every filter's last good \
         version and quarantine, so meshplug stops. See what is there: `meshplug state check \
         --data {data}`; go back to the previous generation: `meshplug state restore --previous \
         --data {data}`; or start over on purpose: `meshplug state reset --data {data}`",
        path.display()
    )
}
