//! The admin HTTP server and the artifact service, each with a graceful stop.

use tokio::net::TcpListener;

use std::net::SocketAddr;

use crate::admin::{self, AdminState};
use crate::artifacts::{self, ArtifactService};

/// Serves the admin API on `listener` until `stop`.
pub(super) async fn serve_admin(
    listener: TcpListener,
    state: AdminState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let result = axum::serve(listener, admin::router(state))
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
    listener: TcpListener,
    service: ArtifactService,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = artifacts::router(service).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "artifact service failed");
    }
}
