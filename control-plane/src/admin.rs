//! The admin HTTP API: health, readiness, Prometheus metrics, JSON status of filters, nodes
//! and rollouts, the rollout controls, and the browser dashboard at `/ui/` (`admin/ui.rs`).
//!
//! With a bearer token configured, every endpoint needs it except `/healthz` and `/readyz`
//! (which say nothing but "ok"): reads too, since `/api/v1/plugins` carries filter
//! configurations (API keys, say), and `/metrics` (scrape it with Prometheus's
//! `authorization` setting). The token is checked before a request body is read, and a body
//! is at most [`MAX_BODY_BYTES`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meshplug_core::nodes::Node;
use serde::Serialize;

use crate::catalog::{FileStatus, SharedCatalog};
use crate::registry::{PluginStatus, Registry};
use crate::rollout::Engine;

mod pprof;
mod replicas;
mod rollouts;
mod ui;

/// What the admin API reads.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Each plugin's inputs.
    pub registry: Arc<Mutex<Registry>>,
    /// Set once the store is loaded and xDS is serving.
    pub ready: Arc<AtomicBool>,
    /// The rollout engine.
    pub engine: Arc<Mutex<Engine>>,
    /// Metrics for `/metrics`.
    pub prometheus: Arc<prometheus_client::registry::Registry>,
    /// The bearer token mutations require, if any.
    pub token: Option<Arc<str>>,
    /// The manifests in force (in folder mode, the clusters only).
    pub manifests: Option<SharedCatalog>,
    /// What this replica knows of the others, when it runs as one of several.
    pub replicas: Option<crate::replica::SharedView>,
}

/// The largest request body the admin API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/manifests", get(manifests))
        .route("/metrics", get(metrics))
        .route("/debug/pprof/profile", get(pprof::profile))
        .merge(rollouts::routes())
        .merge(replicas::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let ui = ui::routes(state.clone());
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .with_state(state)
        .merge(ui)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Refuses a request without the token (401) or with another (403), before its body is read.
async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    match rollouts::authorize(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
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
    plugins: Vec<PluginView>,
}

/// One plugin: its inputs (the registry's) and what was published of them (the engine's).
#[derive(Serialize)]
struct PluginView {
    #[serde(flatten)]
    inputs: PluginStatus,
    /// The ECDS resource version label last published (`<artifact sha>:<config sha prefix>`).
    resource_version: Option<String>,
    /// How many times a version was published.
    publishes: u64,
}

async fn plugins(State(state): State<AdminState>) -> Json<Plugins> {
    let inputs: Vec<PluginStatus> = {
        let registry = state
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        registry.plugins().cloned().collect()
    };
    let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    let plugins = inputs
        .into_iter()
        .map(|inputs| {
            let (version, publishes) = engine.published(&inputs.name);
            PluginView {
                resource_version: version.map(String::from),
                publishes,
                inputs,
            }
        })
        .collect();
    Json(Plugins { plugins })
}

#[derive(Serialize)]
struct Manifests {
    /// Whether manifests are read (by `meshplug serve` in every mode: in folder mode the
    /// artifacts folder's `kind: Cluster` manifests).
    enabled: bool,
    /// Every manifest file read: what is in force from it, and why its text was refused.
    files: Vec<FileStatus>,
}

async fn manifests(State(state): State<AdminState>) -> Json<Manifests> {
    let files = state.manifests.as_ref().map(|catalog| {
        let catalog = catalog.read().unwrap_or_else(PoisonError::into_inner);
        catalog.files.values().cloned().collect()
    });
    Json(Manifests {
        enabled: files.is_some(),
        files: files.unwrap_or_default(),
    })
}

#[derive(Serialize)]
struct Nodes {
    nodes: Vec<NodeView>,
}

/// One node of the node model, with (in a composed mesh) each listener's filter chain on it.
#[derive(Serialize)]
struct NodeView {
    #[serde(flatten)]
    node: Node,
    /// `local` (a path on the control plane's disk) or `agent` (fetched by the host's agent).
    delivery: meshplug_core::nodes::Delivery,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    chains: BTreeMap<String, Vec<String>>,
    /// With replicas: the replica holding the node's stream, when it is another one (its
    /// record as that replica last published it).
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<String>,
}

async fn nodes(State(state): State<AdminState>) -> Json<Nodes> {
    let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    Json(Nodes {
        nodes: node_views(&engine),
    })
}

/// Every node of the node model, and those other replicas hold and this one does not.
fn node_views(engine: &Engine) -> Vec<NodeView> {
    let mut nodes: Vec<NodeView> = engine
        .nodes()
        .iter()
        .map(|node| NodeView {
            node: node.clone(),
            delivery: node.delivery(),
            chains: engine.chains_for(&node.id),
            replica: None,
        })
        .collect();
    let here: std::collections::BTreeSet<String> = nodes
        .iter()
        .filter(|v| v.node.connected)
        .map(|v| v.node.id.clone())
        .collect();
    for (replica, held) in engine.nodes().remote() {
        for node in held
            .values()
            .filter(|n| n.connected && !here.contains(&n.id))
        {
            nodes.push(NodeView {
                node: node.clone(),
                delivery: node.delivery(),
                chains: BTreeMap::new(),
                replica: Some(replica.clone()),
            });
        }
    }
    nodes
}

async fn metrics(
    State(state): State<AdminState>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut text = String::new();
    let content_type = [(
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )];
    match prometheus_client::encoding::text::encode(&mut text, &state.prometheus) {
        Ok(()) => (StatusCode::OK, content_type, text),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            content_type,
            format!("encoding metrics: {err}\n"),
        ),
    }
}

#[cfg(test)]
mod tests;
