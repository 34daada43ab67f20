//! Alerts to the webhook.

use tokio::sync::mpsc;

use crate::rollout::state::Decision;

/// POSTs each alert's decision-log entry to the webhook, if one is set. A failed POST is
/// logged; the alert was already raised in the log and the metrics.
pub(super) async fn send_alerts(
    mut alerts: mpsc::UnboundedReceiver<Decision>,
    webhook: Option<String>,
) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "alert webhook client");
            return;
        }
    };
    while let Some(alert) = alerts.recv().await {
        let Some(url) = &webhook else { continue };
        match client.post(url).json(&alert).send().await {
            Ok(response) if response.status().is_success() => {
                tracing::info!(%url, seq = alert.seq, "alert delivered to the webhook");
            }
            Ok(response) => {
                tracing::error!(%url, status = %response.status(), "alert webhook refused")
            }
            Err(err) => tracing::error!(%url, error = %err, "alert webhook failed"),
        }
    }
}
