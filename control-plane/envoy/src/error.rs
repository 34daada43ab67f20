use thiserror::Error;

/// What can fail while translating to Envoy.
#[derive(Debug, Error)]
pub enum Error {
    /// A bootstrap template used a placeholder nobody filled.
    #[error("bootstrap template: unknown placeholder {{{{{0}}}}}")]
    UnknownPlaceholder(String),
    /// An ECDS resource's remote module could not be read or rewritten.
    #[error("remote module: {0}")]
    BadRemoteModule(String),
}
