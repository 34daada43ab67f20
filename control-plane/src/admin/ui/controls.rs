//! The rollout controls in the browser: each button leads to a confirmation page whose form
//! POSTs the command; the engine carries it out and logs it as a decision, as the API's
//! controls do. A form from another origin is refused.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Ui, respond, short};
use crate::ingest::unix_ms;
use crate::rollout::Command;
use crate::rollout::state::PluginRecord;

pub(super) fn routes() -> Router<Ui> {
    Router::new().route(
        "/ui/rollouts/{plugin}/{action}",
        get(confirm).post(carry_out),
    )
}

/// The buttons that apply to `record` now.
pub(super) fn buttons(name: &str, record: &PluginRecord) -> Markup {
    let rollout = record.rollout.as_ref();
    let paused = rollout.is_some_and(|r| r.paused.is_some());
    html! {
        div.controls #controls {
            @if rollout.is_some() {
                @if paused {
                    a.button #resume href={"/ui/rollouts/" (name) "/resume"} { "Resume" }
                } @else {
                    a.button #pause href={"/ui/rollouts/" (name) "/pause"} { "Pause" }
                }
                a.button #promote href={"/ui/rollouts/" (name) "/promote"} { "Promote" }
                a.button.danger #rollback href={"/ui/rollouts/" (name) "/rollback"} { "Roll back" }
            }
            @for version in record.quarantine.keys() {
                a.button href={"/ui/rollouts/" (name) "/retry?version=" (version)} { "Retry " (short(version)) }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ControlForm {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    full: Option<String>,
}

/// What `action` does, in words, or `None` for an unknown one.
fn describe(action: &str) -> Option<&'static str> {
    Some(match action {
        "pause" => "Stop advancing; the hard gates keep watching.",
        "resume" => "Lift the pause; the gates judge again.",
        "promote" => {
            "Pass the current stage now (or, with \u{201c}all stages\u{201d}, promote at once)."
        }
        "rollback" => "Put the last good version back on every proxy and quarantine the new one.",
        "retry" => "Lift the quarantine of this version and roll it out again.",
        _ => return None,
    })
}

async fn confirm(
    headers: HeaderMap,
    Path((plugin, action)): Path<(String, String)>,
    axum::extract::Query(form): axum::extract::Query<ControlForm>,
) -> Response {
    let Some(what) = describe(&action) else {
        return (StatusCode::NOT_FOUND, "unknown action\n").into_response();
    };
    let main = html! {
        h1 { "Confirm: " (action) " " (plugin) }
        p { (what) }
        form method="post" action={"/ui/rollouts/" (plugin) "/" (action)} {
            @if let Some(version) = &form.version {
                input type="hidden" name="version" value=(version);
                p { "Version " span.sha { (short(version)) } }
            }
            @if action == "promote" {
                label { input type="checkbox" name="full" value="true"; " all stages" } " "
            }
            button type="submit" #confirm { "Confirm " (action) }
            " "
            a href={"/ui/rollouts/" (plugin)} { "Cancel" }
        }
    };
    respond(&headers, "Confirm", main).into_response()
}

async fn carry_out(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path((plugin, action)): Path<(String, String)>,
    Form(form): Form<ControlForm>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "a control from another origin\n").into_response();
    }
    let command = match action.as_str() {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "promote" => Command::Promote {
            full: form.full.as_deref() == Some("true"),
        },
        "rollback" => Command::Rollback,
        "retry" => match form.version {
            Some(version) => Command::Retry { version },
            None => return (StatusCode::BAD_REQUEST, "retry needs a version\n").into_response(),
        },
        _ => return (StatusCode::NOT_FOUND, "unknown action\n").into_response(),
    };
    let outcome = {
        let mut engine = ui.engine();
        engine.command(&plugin, command, unix_ms())
    };
    let message = match outcome {
        Ok(message) => message,
        Err(err) => format!("{action} refused: {err}"),
    };
    let to = format!("/ui/rollouts/{plugin}?done={}", super::urlencode(&message));
    Redirect::to(&to).into_response()
}

/// A browser names the page a form came from; one from elsewhere is refused (the session
/// cookie is SameSite=Strict too).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}
