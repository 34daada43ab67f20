//! A local webhook receiver on 127.0.0.1:0 that keeps every JSON body POSTed to it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The receiver; stopped on drop.
#[derive(Debug)]
pub struct Webhook {
    /// Its address.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl Webhook {
    /// Starts it.
    pub async fn start() -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding webhook"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("webhook address"))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/alert", post(receive))
            .with_state(Arc::clone(&received));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    /// The URL to POST to.
    pub fn url(&self) -> String {
        format!("http://{}/alert", self.addr)
    }

    /// Every body received so far.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn receive(State(received): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>) {
    received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(body);
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}
