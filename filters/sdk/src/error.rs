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
    /// The target being built cannot do this (the README's capability table says which).
    #[error("{call} is not available in a {target} build: {instead}")]
    Unsupported {
        /// The call.
        call: &'static str,
        /// `.wasm` or `.so`.
        target: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    /// A compare-and-swap write found the value at another version.
    #[error("shared data {key}: changed since it was read")]
    CasMismatch {
        /// The key.
        key: String,
    },
}

impl Error {
    /// What a `.wasm` build (and the mock, as one) answers to `Host::set_metadata`.
    pub(crate) const SET_METADATA_ON_WASM: Self = Self::Unsupported {
        call: "set_metadata",
        target: ".wasm",
        instead: "Envoy's proxy-wasm host cannot write dynamic metadata; use set_filter_state",
    };

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
