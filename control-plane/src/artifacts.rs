//! The artifact service: the content-addressed store over HTTP, for proxies on other hosts
//! (`meshplug agent` fetches from it). `GET /artifacts/<sha256>.wasm|.so` only: no listing, no
//! other path. The store holds only artifacts that passed the checks; one quarantined (and
//! not running anywhere) is withheld with 410 and the reason. Responses carry the sha as
//! `ETag`, answer `If-None-Match` with 304 and `Range` with 206 (via `tower-http`'s
//! `ServeFile`), and stream from disk, or from memory for the few shas being fetched now
//! ([`HotArtifacts`], bounded). At most `max_in_flight` bodies stream at once; a fetch
//! waits up to `queue_timeout` for a turn, then gets 503 with `Retry-After`. Every fetch is
//! logged and counted (`meshplug_artifact_fetches_total{result}`,
//! `meshplug_artifact_bytes_served_total`, `meshplug_artifact_fetches_in_flight`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::artifact::ArtifactKind;
use crate::store::Store;
use crate::tls::PeerAddr;

mod hot;
mod metrics;
pub use hot::HotArtifacts;
pub use metrics::ArtifactMetrics;
use metrics::Outcome;

/// The URL of an artifact under the service's `base` (`http://host:port`).
pub fn artifact_url(base: &str, sha: &str, kind: ArtifactKind) -> String {
    format!(
        "{}/artifacts/{sha}.{}",
        base.trim_end_matches('/'),
        kind.extension()
    )
}

/// Why a stored sha must not be served (`Some(reason)`), or `None` when it may be.
pub type Withheld = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The service's state.
#[derive(Clone)]
pub struct ArtifactService {
    /// The store (`<data>/store`).
    pub store: Store,
    /// Asks the rollout state whether a sha is withheld.
    pub withheld: Withheld,
    /// Bodies streaming at once.
    pub permits: Arc<Semaphore>,
    /// How long a fetch waits for a turn.
    pub queue_timeout: Duration,
    /// The counters.
    pub metrics: Arc<ArtifactMetrics>,
    /// Artifacts being fetched now, served whole from memory.
    pub hot: Arc<HotArtifacts>,
}

impl std::fmt::Debug for ArtifactService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactService")
            .field("store", &self.store.dir())
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// The routes.
pub fn router(service: ArtifactService) -> Router {
    Router::new()
        .route("/artifacts/{file}", get(fetch))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not an artifact\n") })
        .with_state(service)
}

/// `<sha256>.<ext>` → (sha, kind), lower-case hex only.
fn parse_name(file: &str) -> Option<(&str, ArtifactKind)> {
    let (sha, ext) = file.split_once('.')?;
    let kind = [ArtifactKind::Wasm, ArtifactKind::Native]
        .into_iter()
        .find(|k| k.extension() == ext)?;
    let hex = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then_some((sha, kind))
}

async fn fetch(
    State(service): State<ArtifactService>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = answer(&service, &file, request).await;
    service.metrics.count(outcome);
    tracing::info!(%peer, artifact = %file, status = response.status().as_u16(),
        result = outcome.label(), ms = started.elapsed().as_millis() as u64, "artifact fetch");
    response
}

async fn answer(service: &ArtifactService, file: &str, request: Request) -> (Outcome, Response) {
    let Some((sha, kind)) = parse_name(file) else {
        let reply = (StatusCode::NOT_FOUND, "not an artifact name\n");
        return (Outcome::NotFound, reply.into_response());
    };
    let path = service.store.path_for(sha, kind);
    if !path.is_file() {
        let reply = (StatusCode::NOT_FOUND, "no such artifact\n");
        return (Outcome::NotFound, reply.into_response());
    }
    if let Some(reason) = (service.withheld)(sha) {
        let reply = (StatusCode::GONE, format!("withheld: {reason}\n"));
        return (Outcome::Withheld, reply.into_response());
    }
    let etag = format!("\"{sha}\"");
    if matches_etag(&request, &etag) {
        let mut reply = StatusCode::NOT_MODIFIED.into_response();
        set_cache_headers(&mut reply, &etag);
        return (Outcome::NotModified, reply);
    }
    let permit = tokio::time::timeout(
        service.queue_timeout,
        Arc::clone(&service.permits).acquire_owned(),
    )
    .await;
    let Ok(Ok(mut permit)) = permit else {
        let mut reply = (StatusCode::SERVICE_UNAVAILABLE, "busy, retry\n").into_response();
        reply
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (Outcome::Busy, reply);
    };
    if !request.headers().contains_key(header::RANGE) {
        match whole(service, (sha, kind), &path, &etag, permit).await {
            Ok(reply) => return (Outcome::Served, reply),
            Err(back) => permit = back,
        }
    }
    // A range, or an artifact too large to hold: streamed from the file.
    let served = match ServeFile::new(&path).oneshot(request).await {
        Ok(served) => served,
        Err(err) => {
            tracing::warn!(error = %err, path = %path.display(), "reading an artifact");
            let reply = (StatusCode::INTERNAL_SERVER_ERROR, "read failed\n");
            return (Outcome::Failed, reply.into_response());
        }
    };
    let (parts, body) = served.into_parts();
    let outcome = match parts.status {
        StatusCode::OK => Outcome::Served,
        StatusCode::PARTIAL_CONTENT => Outcome::Partial,
        _ => Outcome::Failed,
    };
    let body = counted(service, permit, Body::new(body).into_data_stream());
    let mut reply = Response::from_parts(parts, body);
    set_cache_headers(&mut reply, &etag);
    (outcome, reply)
}

/// The whole artifact from memory (read once into [`HotArtifacts`]), or the turn back when
/// it is too large to hold or cannot be read that way.
async fn whole(
    service: &ArtifactService,
    (sha, kind): (&str, ArtifactKind),
    path: &std::path::Path,
    etag: &str,
    permit: OwnedSemaphorePermit,
) -> Result<Response, OwnedSemaphorePermit> {
    let bytes = match service.hot.get(sha) {
        Some(bytes) => bytes,
        None => {
            let len = tokio::fs::metadata(path)
                .await
                .map_or(u64::MAX, |m| m.len());
            if !service
                .hot
                .keeps(usize::try_from(len).unwrap_or(usize::MAX))
            {
                return Err(permit);
            }
            let Ok(read) = tokio::fs::read(path).await else {
                return Err(permit);
            };
            let bytes = Bytes::from(read);
            service.hot.put(sha, bytes.clone());
            bytes
        }
    };
    let len = bytes.len();
    let whole = futures::stream::iter([Ok::<Bytes, std::io::Error>(bytes)]);
    let mut reply = Response::new(counted(service, permit, whole));
    let headers = reply.headers_mut();
    let content_type = match kind {
        ArtifactKind::Wasm => "application/wasm",
        // `parse_name` never yields a built-in filter (it has no file).
        ArtifactKind::Native | ArtifactKind::Builtin => "application/octet-stream",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    set_cache_headers(&mut reply, etag);
    Ok(reply)
}

/// `chunks` as a body that holds `permit` (and counts itself in flight) until it is done or
/// the client went away, counting the bytes it sends.
fn counted<S, E>(service: &ArtifactService, permit: OwnedSemaphorePermit, chunks: S) -> Body
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<axum::BoxError> + 'static,
{
    let metrics = Arc::clone(&service.metrics);
    metrics.started();
    let guard = InFlight {
        metrics: Arc::clone(&metrics),
        _permit: permit,
    };
    Body::from_stream(chunks.map(move |chunk| {
        let _held = &guard;
        if let Ok(bytes) = &chunk {
            metrics.served_bytes(bytes.len());
        }
        chunk
    }))
}

/// A body streaming: gives its turn back when dropped.
struct InFlight {
    metrics: Arc<ArtifactMetrics>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.finished();
    }
}

fn matches_etag(request: &Request, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

fn set_cache_headers(reply: &mut Response, etag: &str) {
    let headers = reply.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    // A sha names its bytes forever.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
}

#[cfg(test)]
mod tests;
