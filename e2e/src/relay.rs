//! A TCP relay on loopback that can be cut and restored: it stands between Envoy and the
//! control plane to simulate a feed outage without touching either process.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The relay; its tasks are aborted on drop.
#[derive(Debug)]
pub struct Relay {
    /// Where it listens.
    pub addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    /// Relays a fresh loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding relay"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("relay address"))?;
        Ok(Self {
            addr,
            target,
            task: Some(tokio::spawn(accept(listener, target))),
        })
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) -> Result<(), HarnessError> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(HarnessError::io("rebinding relay"))?;
        self.task = Some(tokio::spawn(accept(listener, self.target)));
        Ok(())
    }
}

async fn accept(listener: TcpListener, target: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
