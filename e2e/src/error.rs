use std::path::PathBuf;

/// What can go wrong while setting up or driving the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file the harness needs is missing.
    #[error("{what} not found at {path}: {hint}")]
    Missing {
        /// What.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: &'static str,
    },
    /// An I/O operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A process did not become ready.
    #[error("{0}")]
    NotReady(String),
    /// An HTTP call failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Rendering a bootstrap failed.
    #[error(transparent)]
    Meshplug(#[from] meshplug::Error),
    /// JSON decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl HarnessError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |err| Self::Io(context, err)
    }
}
