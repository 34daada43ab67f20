//! `meshplug_limit_refusals_total{limit}`: inputs refused because they passed a limit or were
//! not what they claimed to be, by the limit that refused them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Which limit refused an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A file in the artifacts folder that is not a regular file, a link leaving the folder,
    /// or over the size limit (refused before reading).
    ArtifactFile,
    /// A filter configuration over `--max-config-bytes`.
    ConfigBytes,
    /// An ADS stream whose node is over `--max-node-bytes`.
    NodeBytes,
    /// An xDS or stats stream whose node id is not the identity in its client certificate.
    NodeIdentity,
    /// A TLS handshake that failed (no client certificate, one from another CA, a plain-TCP
    /// client on a TLS port), on any listener.
    TlsHandshake,
    /// An xDS connection closed after sending nothing for `--xds-idle-timeout-s`.
    IdleConnection,
}

impl Limit {
    fn label(self) -> &'static str {
        match self {
            Self::ArtifactFile => "artifact_file",
            Self::ConfigBytes => "config_bytes",
            Self::NodeBytes => "node_bytes",
            Self::IdleConnection => "idle_connection",
            Self::NodeIdentity => "node_identity",
            Self::TlsHandshake => "tls_handshake",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// The refusal counters.
#[derive(Debug, Default)]
pub struct Refusals {
    family: Family<LimitLabel, Counter>,
}

impl Refusals {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let refusals = Self::default();
        registry.register(
            "meshplug_limit_refusals",
            "Inputs refused by a size, shape or file-type limit, by limit",
            refusals.family.clone(),
        );
        refusals
    }

    /// Counters that are not exported (tests).
    pub fn unregistered() -> Self {
        Self::default()
    }

    /// How many inputs `limit` has refused.
    pub fn get(&self, limit: Limit) -> u64 {
        self.family
            .get_or_create(&LimitLabel {
                limit: limit.label(),
            })
            .get()
    }

    /// Counts one refusal by `limit`.
    pub fn count(&self, limit: Limit) {
        self.family
            .get_or_create(&LimitLabel {
                limit: limit.label(),
            })
            .inc();
    }
}
