//! The admin HTTP API: health, readiness and JSON status of filters and nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::fleet::{Fleet, NodeStatus};
use crate::registry::{PluginStatus, Registry};

/// What the admin API reads.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Published filters.
    pub registry: Arc<Mutex<Registry>>,
    /// Nodes and their versions.
    pub fleet: Arc<Mutex<Fleet>>,
    /// Set once the store is loaded and xDS is serving.
    pub ready: Arc<AtomicBool>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/nodes", get(nodes))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

#[derive(Serialize)]
struct Plugins {
    plugins: Vec<PluginStatus>,
}

async fn plugins(State(state): State<AdminState>) -> Json<Plugins> {
    let registry = state
        .registry
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Json(Plugins {
        plugins: registry.plugins().cloned().collect(),
    })
}

#[derive(Serialize)]
struct Nodes {
    nodes: Vec<NodeStatus>,
}

async fn nodes(State(state): State<AdminState>) -> Json<Nodes> {
    let fleet = state.fleet.lock().unwrap_or_else(PoisonError::into_inner);
    Json(Nodes {
        nodes: fleet.nodes().cloned().collect(),
    })
}
