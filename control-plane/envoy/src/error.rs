use thiserror::Error;

/// What can fail while translating to Envoy.
#[derive(Debug, Error)]
pub enum Error {
    /// A bootstrap template used a placeholder nobody filled.
    #[error("bootstrap template: unknown placeholder {{{{{0}}}}}")]
    UnknownPlaceholder(String),
}
