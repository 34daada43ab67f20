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
    /// On a replica that does not lead: the leader's admin API, where the control goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<String>,
}

type Reply<T> = Result<Json<T>, (StatusCode, Json<ApiError>)>;

pub(super) fn error(
    status: StatusCode,
    message: impl Into<String>,
) -> (StatusCode, Json<ApiError>) {
    (
        status,
        Json(ApiError {
            error: message.into(),
            leader: None,
        }),
    )
}

/// A control sent to a replica that does not lead: 421, naming the leader's admin API (the
/// CLI sends it there), or saying nobody leads now.
fn not_leader(state: &AdminState, err: &crate::Error) -> (StatusCode, Json<ApiError>) {
    let leader = state.replicas.as_ref().and_then(|view| {
        let view = view.read().unwrap_or_else(PoisonError::into_inner);
        view.leader.as_ref().and_then(|l| l.admin.clone())
    });
    let message = match &leader {
        Some(url) => format!("{err}; the leader's admin API is {url}"),
        None => format!("{err}; nobody leads right now, try again shortly"),
    };
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(ApiError {
            error: message,
            leader,
        }),
    )
}

async fn list(State(state): State<AdminState>) -> Reply<RolloutList> {
    let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
    let plugins = engine
        .plugins()
        .iter()
        .map(|(name, record)| PluginRollout {
            name: name.clone(),
            record: record.clone(),
            recent_decisions: engine.decisions_of(name, 0, RECENT, true),
        })
        .collect();
    Ok(Json(RolloutList {
        policy: engine.policy().clone(),
        plugins,
    }))
}

/// The most decisions one page holds.
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
struct DecisionQuery {
    /// Only decisions with a larger sequence number.
    #[serde(default)]
    since: u64,
    /// At most this many (default and maximum [`MAX_PAGE`]).
    #[serde(default)]
    limit: Option<usize>,
}

/// A page of a filter's decisions after `since`, oldest first. The next page starts after the
/// last `seq`; a page shorter than `limit` is the last. The most recent decisions come from
/// memory; older ones from the log files (`<data>/rollouts/decisions*.jsonl`), read on a
/// blocking thread, outside the engine lock.
async fn decisions(
    State(state): State<AdminState>,
    Path(plugin): Path<String>,
    Query(query): Query<DecisionQuery>,
) -> Reply<Vec<Decision>> {
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let (recent, archived) = {
        let engine = state.engine.lock().unwrap_or_else(PoisonError::into_inner);
        let recent = engine.decisions_of(&plugin, query.since, limit, false);
        (recent, engine.archived_after(query.since))
    };
    let Some((dir, before)) = archived else {
        return Ok(Json(recent));
    };
    let since = query.since;
    let read = tokio::task::spawn_blocking(move || {
        crate::rollout::state::log::read_archived(&dir, &plugin, (since, before), limit)
    });
    let failed = |err: String| {
        tracing::error!(error = %err, "reading the decision archive");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the decision archive: {err}"),
        )
    };
    let mut page = read
        .await
        .map_err(|err| failed(err.to_string()))?
        .map_err(|err| failed(err.to_string()))?;
    page.extend(recent.into_iter().take(limit - page.len()));
    Ok(Json(page))
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
    body: Option<Json<ControlBody>>,
) -> Reply<ControlReply> {
    // The token was checked before the body was read (`admin::require_token`).
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
        Err(err @ crate::Error::NotLeader(_)) => Err(not_leader(&state, &err)),
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
