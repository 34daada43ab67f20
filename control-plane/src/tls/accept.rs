//! Accepting connections with or without TLS. Handshakes run on their own tasks (at most
//! [`MAX_HANDSHAKES`] at once, each bounded by [`HANDSHAKE_TIMEOUT`]), so a slow or silent
//! client never holds up the next; one that fails (no client certificate, one from another
//! CA, plain TCP on a TLS port) is logged and counted, and never reaches a server.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::ServerTls;
use crate::refusals::{Limit, Refusals};

/// Handshakes in progress at once, per listener.
const MAX_HANDSHAKES: usize = 256;
/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections accepted on `listener`, wrapped by `wrap`, after their TLS handshake: a stream
/// for `tonic`'s `serve_with_incoming`. Ends when the listener fails.
pub fn incoming_streams<S, W>(
    listener: TcpListener,
    tls: ServerTls,
    wrap: W,
    refusals: Option<Arc<Refusals>>,
) -> ReceiverStream<io::Result<TlsStream<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    W: Fn(TcpStream) -> S + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            if tx.is_closed() {
                return;
            }
            let (out, acceptor) = (tx.clone(), TlsAcceptor::from(tls.config()));
            let (stream, refusals) = (wrap(stream), refusals.clone());
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(tls) = handshake(acceptor, stream, peer, refusals.as_deref()).await {
                    let _ = out.send(Ok(tls)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: TlsAcceptor,
    stream: S,
    peer: SocketAddr,
    refusals: Option<&Refusals>,
) -> Option<TlsStream<S>> {
    let reason = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
    };
    tracing::info!(%peer, %reason, "TLS handshake refused");
    if let Some(refusals) = refusals {
        refusals.count(Limit::TlsHandshake);
    }
    None
}

/// A connection with or without TLS.
#[derive(Debug)]
pub enum MaybeTls<S> {
    /// Plain TCP.
    Plain(S),
    /// After the TLS handshake.
    Tls(Box<TlsStream<S>>),
}

/// An HTTP listener (for `axum::serve`) that does the TLS handshake when it has a
/// [`ServerTls`], and hands over plain TCP otherwise.
#[derive(Debug)]
pub struct Incoming {
    local: SocketAddr,
    kind: IncomingKind,
}

#[derive(Debug)]
enum IncomingKind {
    Plain(TcpListener),
    Tls(mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>),
}

impl Incoming {
    /// Accepts on `listener`, with TLS when `tls` is given.
    pub fn new(
        listener: TcpListener,
        tls: Option<ServerTls>,
        refusals: Option<Arc<Refusals>>,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let kind = match tls {
            None => IncomingKind::Plain(listener),
            Some(tls) => {
                let (tx, rx) = mpsc::channel(64);
                let mut streams = incoming_streams(listener, tls, |s| s, refusals);
                tokio::spawn(async move {
                    while let Some(Ok(stream)) = tokio_stream::StreamExt::next(&mut streams).await {
                        let Ok(peer) = stream.get_ref().0.peer_addr() else {
                            continue;
                        };
                        if tx.send((stream, peer)).await.is_err() {
                            return;
                        }
                    }
                });
                IncomingKind::Tls(rx)
            }
        };
        Ok(Self { local, kind })
    }
}

impl Listener for Incoming {
    type Io = MaybeTls<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.kind {
            IncomingKind::Plain(listener) => {
                let (stream, peer) = Listener::accept(listener).await;
                (MaybeTls::Plain(stream), peer)
            }
            IncomingKind::Tls(rx) => match rx.recv().await {
                Some((stream, peer)) => (MaybeTls::Tls(Box::new(stream)), peer),
                // The accept loop ended: nothing more will arrive.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The peer's address of a connection accepted by [`Incoming`], for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, Incoming>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Incoming>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
