//! `serve` as one of several replicas (`--store etcd://…`): joining, what this replica
//! announces, and what its tasks work on. Taking the lead reads the folders whole
//! (`folder::read_all`).

use std::sync::Arc;

use super::{BoundAddrs, Parts, ServeConfig};
use crate::Error;
use crate::ingest::unix_ms;
use crate::replica::{Member, Replica, ReplicaConfig, ReplicaParts};
use crate::tls::ClientTls;

/// Joins the replicas; peers need an artifact service.
pub(super) async fn join(config: &ServeConfig, replicas: &ReplicaConfig) -> Result<Replica, Error> {
    if config.artifacts.is_none() {
        return Err(Error::NotReplicated(
            "--store etcd:// needs --artifacts-addr: replicas fetch the artifacts they lack \
             from each other's artifact service"
                .into(),
        ));
    }
    let id = replicas.id.clone().unwrap_or_else(|| {
        let port = config.admin_addr.port();
        let suffix = if port == 0 {
            std::process::id()
        } else {
            u32::from(port)
        };
        format!("{}-{suffix}", crate::replica::host_name())
    });
    Replica::join(replicas, id).await
}

/// What `replica` tells the others about itself.
pub(super) fn member(
    replica: &Replica,
    bound: &BoundAddrs,
    admin_scheme: &str,
    artifacts: Option<String>,
) -> Member {
    Member {
        id: replica.id().to_string(),
        admin: format!("{admin_scheme}://{}", bound.admin),
        artifacts,
        xds: bound.xds.to_string(),
        started_ms: unix_ms(),
    }
}

/// What the replica's tasks work on. With TLS, peers are reached with this replica's own
/// certificate, trusting the client CA (the one CA `meshplug pki` issues every certificate
/// from).
pub(super) fn parts(config: &ServeConfig, parts: &Parts) -> ReplicaParts {
    let peer_tls = config.tls.as_ref().and_then(|tls| {
        let ca = tls
            .client_ca
            .clone()
            .or_else(|| tls.admin_client_ca.clone())?;
        Some(ClientTls {
            ca,
            identity: Some((tls.cert.clone(), tls.key.clone())),
        })
    });
    ReplicaParts {
        engine: Arc::clone(&parts.engine),
        store: parts.ingest.store.clone(),
        peer_tls,
        token: config.admin_token.clone(),
        max_artifact_bytes: config.limits.max_artifact_bytes,
        folder: parts.ingest.folder.clone(),
        archive: config.data_dir.join("rollouts"),
        manifests: (Arc::clone(&parts.ingest.manifests), config.mode.governs()),
    }
}
