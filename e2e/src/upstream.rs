//! A small HTTP upstream on 127.0.0.1:0 that answers 200 to everything.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderMap, HeaderName};
use axum::routing::any;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The upstream server; aborted on drop.
#[derive(Debug)]
pub struct Upstream {
    /// Its address.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

/// The body every upstream response carries.
pub const UPSTREAM_BODY: &str = "upstream ok\n";

impl Upstream {
    /// Starts it on an ephemeral loopback port.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST).await
    }

    /// Starts it on an ephemeral port of `ip`.
    pub async fn start_on(ip: std::net::Ipv4Addr) -> Result<Self, HarnessError> {
        Self::serve(ip, Router::new().fallback(any(echo))).await
    }

    /// Starts a server on an ephemeral loopback port that answers every request with 200 and
    /// `body` (a callout target that always answers the same).
    pub async fn start_answering(body: &'static str) -> Result<Self, HarnessError> {
        let app = Router::new().fallback(any(move || async move { body }));
        Self::serve(std::net::Ipv4Addr::LOCALHOST, app).await
    }

    async fn serve(ip: std::net::Ipv4Addr, app: Router) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .map_err(HarnessError::io("binding upstream"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("upstream address"))?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }
}

/// The body the upstream answers under `/secret` (a body-rewriting filter's target).
pub const SECRET_BODY: &str = "a secret here\n";

/// Answers [`UPSTREAM_BODY`] ([`SECRET_BODY`] under `/secret`), echoing every request header
/// named `x-...` back as a response header `echo-x-...`, so tests can see what a filter did to
/// the request.
async fn echo(uri: axum::http::Uri, headers: HeaderMap) -> (HeaderMap, &'static str) {
    let mut echoed = HeaderMap::new();
    for (name, value) in &headers {
        if name.as_str().starts_with("x-")
            && let Ok(echo_name) = HeaderName::try_from(format!("echo-{name}"))
        {
            echoed.append(echo_name, value.clone());
        }
    }
    let body = match uri.path().starts_with("/secret") {
        true => SECRET_BODY,
        false => UPSTREAM_BODY,
    };
    (echoed, body)
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
