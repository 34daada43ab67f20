//! Fake upstreams: a loopback HTTP server per faked cluster that answers what the case says
//! and remembers the last request as it arrived (so a case can check what the filter sent on).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meshplug_preflight::UpstreamResponse;

use crate::Error;

/// What a fake saw last and answers now.
#[derive(Debug, Default)]
struct Shared {
    answer: UpstreamResponse,
    last: Option<SeenRequest>,
}

/// A request as the upstream got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: String,
}

/// One fake upstream, stopped on drop.
#[derive(Debug)]
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Starts a fake on 127.0.0.1:0 answering `answer`.
    pub async fn start(answer: UpstreamResponse) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::TestSetup(format!("binding a fake upstream: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::TestSetup(format!("a fake upstream's address: {e}")))?;
        let shared = Arc::new(Mutex::new(Shared { answer, last: None }));
        let app = axum::Router::new()
            .fallback(answer_request)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(error = %err, "a fake upstream stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// Answers `answer` from now on, and forgets the last request.
    pub fn reset(&self, answer: UpstreamResponse) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.answer = answer;
        shared.last = None;
    }

    /// Forgets the last request (before a new one is sent).
    pub fn forget_last(&self) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last = None;
    }

    /// The last request it got since the last reset.
    pub fn last(&self) -> Option<SeenRequest> {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.last.clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer_request(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let headers = super::send::header_map(&headers);
        shared.last = Some(SeenRequest {
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        shared.answer.clone()
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
