//! TLS for every listener (ADS and stats, the artifact service, the admin API) and for the
//! clients (the agent, the CLI). Server certificates, keys and client CAs are PEM files;
//! [`ServerTls`] re-reads them when they change on disk (checked every second) and new
//! handshakes use the new ones, while connections already open keep theirs, so rotation
//! drops no stream. A change that does not load (a key written before its certificate, say)
//! is logged and the previous configuration stays until the files load together.
//!
//! With a client CA, the ADS and stats listeners also bind a client's certificate to the node
//! it speaks for ([`identity`]): the certificate must name `spiffe://meshplug/node/<node id>`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::Error;

mod accept;
pub mod identity;

pub use accept::{Incoming, MaybeTls, PeerAddr, incoming_streams};

/// How often certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The files of a listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates a client's certificate must chain to; `None`: no client certificate
    /// is asked for.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }
}

/// A listener's TLS configuration, reloaded from its files when they change.
#[derive(Clone)]
pub struct ServerTls {
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads `files`, offering the ALPN protocols `alpn` (`h2` for gRPC, `http/1.1` for the
    /// HTTP listeners). Fails with the file and the reason when they do not load.
    pub fn load(files: TlsFiles, alpn: &[&[u8]]) -> Result<Self, Error> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let config = server_config(&files, &alpn)?;
        Ok(Self {
            files,
            alpn,
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The configuration new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&current)
    }

    /// Loads the files now. When they do not load, the previous configuration stays and the
    /// error says why.
    pub fn reload(&self) -> Result<(), Error> {
        let config = server_config(&self.files, &self.alpn)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }
}

/// Watches the files of every listener in `listeners` until `stop` (one poll a second for
/// all of them), loading a listener's again after they change; one log line per change.
pub fn spawn_reloads(listeners: Vec<ServerTls>, mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut seen: Vec<_> = listeners.iter().map(|l| stamps(&l.files)).collect();
        let mut every = tokio::time::interval(RELOAD_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            let mut reloaded = 0;
            let mut failed = None;
            for (listener, seen) in listeners.iter().zip(&mut seen) {
                let now = stamps(&listener.files);
                if now == *seen {
                    continue;
                }
                *seen = now;
                match listener.reload() {
                    Ok(()) => reloaded += 1,
                    Err(err) => failed = Some(err),
                }
            }
            if reloaded > 0 {
                tracing::info!(listeners = reloaded, "TLS certificates reloaded");
            }
            if let Some(err) = failed {
                tracing::warn!(error = %err,
                    "TLS files changed but do not load; new connections keep the previous ones");
            }
        }
    });
}

/// (modified time, length) of each file, to notice a change.
fn stamps(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    files
        .paths()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn tls_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{}: {detail}", path.display()))
}

/// The certificates in a PEM file; an error when it holds none.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_error(path, e))
}

/// A root store of the CA certificates in `path`.
pub fn read_roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| tls_error(path, e))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<ServerConfig, Error> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider())
                    .build()
                    .map_err(|e| tls_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        tls_error(
            &files.key,
            format!("does not match {}: {e}", files.cert.display()),
        )
    })?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// The bytes of a PEM file a client presents or trusts.
fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(Error::io("reading", path))
}

/// Client-side TLS: the CA that signs the control plane's certificate and, for mTLS, the
/// client's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificates the server's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// The client certificate and key, when the server asks for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// The settings from the usual flags: `ca` turns TLS on; `cert` and `key` go together.
    pub fn from_flags(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<Self>, Error> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(Error::Tls("--tls-cert and --tls-key go together".into())),
        };
        match (ca, identity) {
            (Some(ca), identity) => Ok(Some(Self { ca, identity })),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(Error::Tls(
                "a client certificate needs --ca, the CA of the control plane's certificate".into(),
            )),
        }
    }

    /// The tonic channel settings, files read now.
    pub fn tonic(&self) -> Result<tonic::transport::ClientTlsConfig, Error> {
        let mut config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(&self.ca)?));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(tonic::transport::Identity::from_pem(
                read(cert)?,
                read(key)?,
            ));
        }
        Ok(config)
    }

    /// Adds the CA and the client identity to an HTTP client, files read now.
    pub fn reqwest(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, Error> {
        let mut builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
        for cert in reqwest::Certificate::from_pem_bundle(&read(&self.ca)?)
            .map_err(|e| tls_error(&self.ca, e))?
        {
            builder = builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| tls_error(cert, e))?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests;
