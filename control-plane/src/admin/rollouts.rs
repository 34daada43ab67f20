//! `/api/v1/rollouts`: every filter's rollout state and recent decisions, and `POST`
//! `/api/v1/rollouts/{plugin}/{pause|resume|promote|rollback|retry}`.

use std::sync::PoisonError;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::ingest::unix_ms;
use crate::rollout::state::{Decision, PluginRecord};
use crate::rollout::{Command, Policy};

/// How many decisions per filter the list shows.
const RECENT: usize = 20;

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/v1/rollouts", get(list))
        .route("/api/v1/rollouts/{plugin}/decisions", get(decisions))
        .route("/api/v1/rollouts/{plugin}/{action}", post(control))
}

#[derive(Serialize)]
struct RolloutList {
    policy: Policy,
    plugins: Vec<PluginRollout>,
}

#[derive(Serialize)]
struct PluginRollout {
    name: String,
    #[serde(flatten)]
    record: PluginRecord,
    recent_decisions: Vec<Decision>,
}

#[derive(Serialize)]
pub(super) struct ApiError {
    error: String,
}

type Reply<T> = Result<Json<T>, (StatusCode, Json<ApiError>)>;

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<ApiError>) {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
}

async fn list(State(state): State<AdminState>) -> Reply<RolloutList> {
    let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    let log = engine
        .decisions()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let plugins = engine
        .plugins()
        .iter()
        .map(|(name, record)| {
            let mine: Vec<Decision> = log.iter().filter(|d| &d.plugin == name).cloned().collect();
            let skip = mine.len().saturating_sub(RECENT);
            PluginRollout {
                name: name.clone(),
                record: record.clone(),
                recent_decisions: mine.into_iter().skip(skip).collect(),
            }
        })
        .collect();
    Ok(Json(RolloutList {
        policy: engine.policy().clone(),
        plugins,
    }))
}

#[derive(Deserialize)]
struct DecisionQuery {
    #[serde(default)]
    since: u64,
}

async fn decisions(
    State(state): State<AdminState>,
    Path(plugin): Path<String>,
    Query(query): Query<DecisionQuery>,
) -> Reply<Vec<Decision>> {
    let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    let log = engine
        .decisions()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(
        log.into_iter()
            .filter(|d| d.plugin == plugin && d.seq > query.since)
            .collect(),
    ))
}

#[derive(Deserialize, Default)]
struct ControlBody {
    #[serde(default)]
    full: bool,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Serialize)]
struct ControlReply {
    message: String,
}

async fn control(
    State(state): State<AdminState>,
    Path((plugin, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<ControlBody>>,
) -> Reply<ControlReply> {
    authorize(&state, &headers)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let command = match action.as_str() {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "promote" => Command::Promote { full: body.full },
        "rollback" => Command::Rollback,
        "retry" => Command::Retry {
            version: body.version.ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "retry needs {\"version\": \"<sha prefix>\"}",
                )
            })?,
        },
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}: pause, resume, promote, rollback or retry"),
            ));
        }
    };
    let mut engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    match engine.command(&plugin, command, unix_ms()) {
        Ok(message) => Ok(Json(ControlReply { message })),
        Err(err) => Err(error(StatusCode::CONFLICT, err.to_string())),
    }
}

pub(super) fn authorize(
    state: &AdminState,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, Json<ApiError>)> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(error(StatusCode::FORBIDDEN, "wrong bearer token")),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "this call needs Authorization: Bearer <token>",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
