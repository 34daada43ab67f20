//! The SDK's one error type.

/// What can go wrong between a filter and its host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is not valid JSON for the filter's settings type, or the filter refused
    /// it. The proxy rejects the configuration (a NACK) and keeps the previous one.
    #[error("invalid {filter} configuration: {reason}")]
    Config {
        /// The filter.
        filter: &'static str,
        /// Why.
        reason: String,
    },
    /// A host call failed.
    #[error("host call {call} failed: {detail}")]
    Host {
        /// The call.
        call: &'static str,
        /// What the host said.
        detail: String,
    },
}

impl Error {
    /// A configuration error for `filter`.
    pub fn config(filter: &'static str, reason: impl Into<String>) -> Self {
        Self::Config {
            filter,
            reason: reason.into(),
        }
    }

    /// A failed host call.
    pub fn host(call: &'static str, detail: impl Into<String>) -> Self {
        Self::Host {
            call,
            detail: detail.into(),
        }
    }
}
