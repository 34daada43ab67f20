//! The admin HTTP server, with a graceful stop.

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};

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
