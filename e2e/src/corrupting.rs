//! An HTTP relay that corrupts what it relays: it fetches each path from a target and answers
//! with one byte flipped in the middle of the body, status and length unchanged. It stands
//! between an agent and the artifact service to show that a module damaged on the wire never
//! runs.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The relay; its task is aborted on drop.
#[derive(Debug)]
pub struct CorruptingRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Target {
    base: String,
    http: reqwest::Client,
}

impl CorruptingRelay {
    /// Relays an ephemeral port of `ip` to `target` (`http://host:port`).
    pub async fn start(ip: Ipv4Addr, target: &str) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .map_err(HarnessError::io("binding the corrupting relay"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("relay address"))?;
        let state = Target {
            base: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().no_proxy().build()?,
        };
        let app = Router::new().fallback(relay).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }
}

impl Drop for CorruptingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(State(target): State<Target>, request: Request) -> Response {
    let url = format!("{}{}", target.base, request.uri());
    let Ok(upstream) = target.http.get(&url).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = upstream.status();
    let Ok(body) = upstream.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut body = body.to_vec();
    let middle = body.len() / 2;
    if let Some(byte) = body.get_mut(middle) {
        *byte ^= 0x5a;
    }
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, body).into_response()
}
