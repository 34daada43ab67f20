//! The browser dashboard at `/ui/`: the fleet, each plugin, each rollout with its gates, plots
//! and decision timeline, and the manifests. Server-rendered HTML (maud), readable without
//! JavaScript; a few lines of script refresh the page's `<main>` when the server-sent events
//! of `/ui/events` say something changed.
//!
//! With an admin token, every page needs it: `/ui/login` takes the token and sets an
//! HttpOnly, SameSite=Strict cookie holding a session derived from the token and a secret of
//! this process (so it ends when the process or the token changes); a bearer header works
//! too. Controls are POSTed forms behind a confirmation page, logged as decisions like the
//! API's.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use futures::Stream;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::AdminState;

mod controls;
mod fleet;
mod manifests;
mod plot;
mod plugin;
mod rollout;
mod words;

/// The session cookie's name.
const COOKIE: &str = "meshplug_session";

const STYLE: &str = include_str!("ui/style.css");
const SCRIPT: &str = include_str!("ui/live.js");

/// What the pages share: the admin state and this process's session secret.
#[derive(Clone)]
pub(super) struct Ui {
    pub(super) admin: AdminState,
    secret: Arc<[u8; 32]>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").finish_non_exhaustive()
    }
}

/// The `/ui/` routes.
pub(super) fn routes(admin: AdminState) -> Router {
    let mut secret = [0u8; 32];
    if let Err(err) = getrandom::fill(&mut secret) {
        // Without randomness the session is still bound to the token; it only outlives a
        // restart.
        tracing::warn!(error = %err, "no random session secret for the dashboard");
    }
    let ui = Ui {
        admin,
        secret: Arc::new(secret),
    };
    let pages = Router::new()
        .route("/ui/", get(fleet::page))
        .route("/ui/plugins/{plugin}", get(plugin::page))
        .route("/ui/rollouts/{plugin}", get(rollout::page))
        .route("/ui/manifests", get(manifests::page))
        .route("/ui/events", get(events))
        .merge(controls::routes())
        .route_layer(middleware::from_fn_with_state(ui.clone(), require_session));
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route("/ui/style.css", get(style))
        .route("/ui/live.js", get(script))
        .merge(pages)
        .with_state(ui)
}

impl Ui {
    /// The engine, for one page's reads.
    pub(super) fn engine(&self) -> std::sync::MutexGuard<'_, crate::rollout::Engine> {
        self.admin
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry, for one page's reads.
    pub(super) fn registry(&self) -> std::sync::MutexGuard<'_, crate::registry::Registry> {
        self.admin
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The session value for `token`.
    fn session_for(&self, token: &str) -> String {
        let mut input = self.secret.to_vec();
        input.extend_from_slice(token.as_bytes());
        crate::store::sha256_hex(&input)
    }

    /// Whether the request may see the pages: no token is set, or it carries the session
    /// cookie or the bearer token.
    fn admitted(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.admin.token else {
            return true;
        };
        if super::rollouts::authorize(&self.admin, headers).is_ok() {
            return true;
        }
        let expected = self.session_for(token);
        cookie(headers, COOKIE).is_some_and(|given| same(given.as_bytes(), expected.as_bytes()))
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Sends a visitor without a session to the login page (a script's fetch gets 401).
async fn require_session(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    if ui.admitted(request.headers()) {
        return next.run(request).await;
    }
    if request.method() == axum::http::Method::GET && !is_fragment(request.headers()) {
        let back = request
            .uri()
            .path_and_query()
            .map_or("/ui/", |p| p.as_str());
        let to = format!("/ui/login?next={}", urlencode(back));
        return Redirect::to(&to).into_response();
    }
    (StatusCode::UNAUTHORIZED, "log in at /ui/login\n").into_response()
}

/// Whether the live script asks for the `<main>` element alone.
pub(super) fn is_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("x-meshplug-fragment")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    failed: bool,
}

async fn login_form(axum::extract::Query(query): axum::extract::Query<LoginQuery>) -> Html<String> {
    let next = safe_next(query.next.as_deref());
    let body = html! {
        h1 { "Log in" }
        @if query.failed { p.refusal { "That is not the admin token." } }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label { "Admin token " input type="password" name="token" id="token" autofocus; }
            " "
            button type="submit" id="login" { "Log in" }
        }
    };
    Html(layout("Log in", body).into_string())
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Checks the token; on a match sets the session cookie and goes where the visitor was headed.
async fn login(State(ui): State<Ui>, Form(body): Form<LoginBody>) -> Response {
    let next = safe_next(body.next.as_deref());
    let Some(token) = &ui.admin.token else {
        return Redirect::to(&next).into_response();
    };
    if !same(body.token.as_bytes(), token.as_bytes()) {
        let to = format!("/ui/login?failed=true&next={}", urlencode(&next));
        return Redirect::to(&to).into_response();
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        ui.session_for(token)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}

/// Only a path of this dashboard: never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with("/ui/") && !path.starts_with("//") => path.to_string(),
        _ => "/ui/".to_string(),
    }
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// A whole page around `main`, or `main` alone when the live script asks for it.
pub(super) fn respond(headers: &HeaderMap, title: &str, main: Markup) -> Html<String> {
    if is_fragment(headers) {
        return Html(html! { main { (main) } }.into_string());
    }
    Html(layout(title, main).into_string())
}

fn layout(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · meshplug" }
                link rel="stylesheet" href="/ui/style.css";
                script src="/ui/live.js" defer {}
            }
            body {
                nav {
                    strong { "meshplug" }
                    a href="/ui/" { "Fleet" }
                    a href="/ui/manifests" { "Manifests" }
                    span #live title="updates from /ui/events" { "static" }
                    form.logout method="post" action="/ui/logout" { button { "Log out" } }
                }
                main { (main) }
            }
        }
    }
}

/// Server-sent events: `change` whenever what the pages show changed (looked at twice a
/// second), so the page fetches its `<main>` again.
async fn events(
    State(ui): State<Ui>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures::stream::unfold((ui, None::<u64>), |(ui, last)| async move {
        loop {
            let now = fingerprint(&ui.admin);
            if last.is_some_and(|seen| seen != now) {
                let event = Event::default().event("change").data(now.to_string());
                return Some((Ok(event), (ui, Some(now))));
            }
            if last.is_none() {
                let event = Event::default().event("hello").data(now.to_string());
                return Some((Ok(event), (ui, Some(now))));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A hash of what the pages show: the rollout records, the node model, the plugins' inputs
/// and the manifests.
fn fingerprint(admin: &AdminState) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    {
        let engine = admin.engine.lock().unwrap_or_else(PoisonError::into_inner);
        let records = serde_json::to_vec(engine.plugins()).unwrap_or_default();
        records.hash(&mut hasher);
        let nodes: Vec<_> = engine.nodes().iter().collect();
        serde_json::to_vec(&nodes)
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    {
        let registry = admin
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let plugins: Vec<_> = registry.plugins().collect();
        serde_json::to_vec(&plugins)
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    if let Some(catalog) = &admin.manifests {
        let catalog = catalog.read().unwrap_or_else(PoisonError::into_inner);
        let files: Vec<_> = catalog.files.values().collect();
        serde_json::to_vec(&files)
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// A short sha or version: its first 12 characters.
pub(super) fn short(text: &str) -> String {
    text.chars().take(12).collect()
}

/// Markup for text that is already HTML-safe by construction (SVG drawn here).
pub(super) fn trusted(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests;
