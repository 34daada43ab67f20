//! The admin HTTP server and the artifact service, each with a graceful stop, over TLS when
//! configured.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::artifacts::{self, ArtifactService};
use crate::refusals::Refusals;
use crate::tls::{Incoming, PeerAddr, ServerTls};

/// Serves the admin API on `listener` until `stop`.
pub(super) async fn serve_admin(
    (listener, tls): (TcpListener, Option<ServerTls>),
    state: AdminState,
    refusals: Arc<Refusals>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let incoming = match Incoming::new(listener, tls, Some(refusals)) {
        Ok(incoming) => incoming,
        Err(err) => return tracing::error!(error = %err, "admin server failed"),
    };
    let result = axum::serve(incoming, admin::router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "admin server failed");
    }
}

/// Serves the artifact service on `listener` until `stop`.
pub(super) async fn serve_artifacts(
    (listener, tls): (TcpListener, Option<ServerTls>),
    service: ArtifactService,
    refusals: Arc<Refusals>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let incoming = match Incoming::new(listener, tls, Some(refusals)) {
        Ok(incoming) => incoming,
        Err(err) => return tracing::error!(error = %err, "artifact service failed"),
    };
    let app = artifacts::router(service).into_make_service_with_connect_info::<PeerAddr>();
    let result = axum::serve(incoming, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "artifact service failed");
    }
}
