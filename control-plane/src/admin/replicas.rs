//! `/api/v1/replicas`: every replica, the leader and its term, and the nodes each holds; and
//! `POST /api/v1/replicas/flushes`, where followers relay their proxies' stats flushes to the
//! leader. Without replicas the first answers `{"enabled": false}`.

use std::sync::PoisonError;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::AdminState;
use super::rollouts::{ApiError, error};
use crate::replica::{Flushes, ReplicasView};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/v1/replicas", get(list))
        .route("/api/v1/replicas/flushes", post(flushes))
}

#[derive(Serialize)]
struct Replicas {
    /// Whether this control plane runs as replicas (`serve --store etcd://…`).
    enabled: bool,
    #[serde(flatten)]
    view: Option<ReplicasView>,
}

async fn list(State(state): State<AdminState>) -> Json<Replicas> {
    let view = state.replicas.as_ref().map(|view| {
        let mut view = view.read().unwrap_or_else(PoisonError::into_inner).clone();
        // This replica's own nodes, as its engine holds them now.
        let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = engine.nodes().iter().filter(|n| n.connected);
        view.nodes
            .insert(view.me.clone(), mine.map(|n| n.id.clone()).collect());
        view
    });
    Json(Replicas {
        enabled: view.is_some(),
        view,
    })
}

#[derive(Serialize)]
struct Taken {
    taken: usize,
}

/// The leader takes a follower's flushes as its own proxies' (its gates judge them).
async fn flushes(
    State(state): State<AdminState>,
    Json(body): Json<Flushes>,
) -> Result<Json<Taken>, (StatusCode, Json<ApiError>)> {
    let mut engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    if !engine.decides() {
        return Err(error(
            StatusCode::MISDIRECTED_REQUEST,
            "this replica does not lead: flushes go to the leader",
        ));
    }
    tracing::trace!(from = %body.from, flushes = body.flushes.len(), "relayed flushes");
    for flush in &body.flushes {
        engine.on_metrics(&flush.node, &flush.sample, flush.at_ms);
    }
    Ok(Json(Taken {
        taken: body.flushes.len(),
    }))
}
