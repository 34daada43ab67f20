//! The agent's artifact cache: fetch a module once per host, check its sha256 while it
//! streams in, and keep it at `<cache>/<sha256>.<ext>` (read-only, written then renamed, so a
//! proxy never opens half a file). The cache is laid out as the control plane's [`Store`]
//! (same paths, same temp files, cleaned up the same way after a crash). Bytes whose sha256 is not the one the control plane named
//! never reach that path.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use meshplug_envoy::ecds::RemoteModule;

use crate::Error;
use crate::store::{Store, sha256_hex};
use crate::tls::ClientTls;
use meshplug_core::digest::hex;

/// The cache and the HTTP client that fills it.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Without TLS, one client for every fetch; with TLS, `None`: each fetch builds its own,
    /// reading the certificate files again, so a rotated certificate is used next time.
    http: Option<reqwest::Client>,
    tls: Option<ClientTls>,
    cache: Store,
    /// Replaces the scheme and authority of every artifact URL (`http://host:port`).
    base: Option<String>,
    max_bytes: u64,
    /// One download per sha at a time, whichever stream asks.
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Fetcher {
    /// A cache in `dir` (created), fetching from the URLs resources name, or from `base`.
    pub fn new(dir: &Path, base: Option<String>, max_bytes: u64) -> Result<Self, Error> {
        Self::with_tls(dir, base, max_bytes, None)
    }

    /// As [`new`](Self::new), over TLS (and with a client certificate) when `tls` is given.
    pub fn with_tls(
        dir: &Path,
        base: Option<String>,
        max_bytes: u64,
        tls: Option<ClientTls>,
    ) -> Result<Self, Error> {
        let cache = Store::open(dir)?;
        let http = match tls {
            None => Some(http_client(None)?),
            // Checked now, so a bad file stops the agent at start.
            Some(ref tls) => http_client(Some(tls)).map(|_| None)?,
        };
        Ok(Self {
            http,
            tls,
            cache,
            base: base.map(|b| b.trim_end_matches('/').to_string()),
            max_bytes,
            in_flight: Arc::default(),
        })
    }

    /// Where `module` is (or will be) cached.
    pub fn path_for(&self, module: &RemoteModule) -> PathBuf {
        self.cache.path_for(&module.sha256, module.kind)
    }

    /// The URL `module` is fetched from.
    pub fn url_for(&self, module: &RemoteModule) -> String {
        match (&self.base, module.uri.find("/artifacts/")) {
            (Some(base), Some(at)) => format!("{base}{}", &module.uri[at..]),
            _ => module.uri.clone(),
        }
    }

    /// The cached copy of `module`, fetched and verified first if it is not there.
    pub async fn ensure(&self, module: &RemoteModule) -> Result<PathBuf, Error> {
        let path = self.path_for(module);
        let lock = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(module.sha256.clone()).or_default())
        };
        let _turn = lock.lock().await;
        if path.is_file() {
            return Ok(path);
        }
        let url = self.url_for(module);
        let started = std::time::Instant::now();
        let bytes = self.download(&url, module, &path).await?;
        tracing::info!(filter = %module.filter, sha = %module.sha256, %url, bytes,
            ms = started.elapsed().as_millis() as u64, "artifact fetched and verified");
        Ok(path)
    }

    /// Streams `url` into a temporary file, hashing as it goes; renames it to `path` only if
    /// the sha256 matches. Returns the size.
    async fn download(&self, url: &str, module: &RemoteModule, path: &Path) -> Result<u64, Error> {
        let fail = |reason: String| Error::Fetch {
            url: url.to_string(),
            reason,
        };
        let http = match &self.http {
            Some(http) => http.clone(),
            None => http_client(self.tls.as_ref())?,
        };
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(error_chain(&e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let first = body.lines().next().unwrap_or("").trim();
            return Err(fail(format!("HTTP {status}: {first}")));
        }
        let tmp = self.cache.temp_path(&module.sha256);
        let result = self.write_hashed(response, &tmp, &fail).await;
        let (size, sha) = match result {
            Ok(done) => done,
            Err(err) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(err);
            }
        };
        if sha != module.sha256 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(fail(format!(
                "sha256 mismatch: the {size} bytes received hash to {sha}, the control plane \
                 named {}; refused, nothing cached",
                module.sha256
            )));
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))
            .map_err(Error::io("making read-only", &tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io("renaming into cache", path))?;
        Ok(size)
    }

    async fn write_hashed(
        &self,
        response: reqwest::Response,
        tmp: &Path,
        fail: &impl Fn(String) -> Error,
    ) -> Result<(u64, String), Error> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(Error::io("creating", tmp))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| fail(format!("reading the body: {}", error_chain(&e))))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(fail(format!("larger than {} bytes", self.max_bytes)));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(Error::io("writing", tmp))?;
        }
        file.sync_all().await.map_err(Error::io("syncing", tmp))?;
        Ok((size, hex(&hasher.finalize())))
    }

    /// Drops cached files whose bytes no longer hash to their name (a disk that lied, or a
    /// hand edit). Returns how many were dropped.
    pub fn verify_cache(&self) -> Result<usize, Error> {
        let mut dropped = 0;
        let dir = self.cache.dir();
        let entries = std::fs::read_dir(dir).map_err(Error::io("reading", dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let named = stem.len() == 64 && !stem.starts_with('.');
            if !named {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(Error::io("reading", &path))?;
            if sha256_hex(&bytes) != stem {
                tracing::warn!(path = %path.display(), "cached artifact does not match its sha256: dropped");
                std::fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

/// The HTTP client of fetches. A fresh connection per fetch (fetches are rare): a pooled one
/// could outlive a route that is gone and hang until the read timeout instead of failing at
/// connect.
fn http_client(tls: Option<&ClientTls>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    if let Some(tls) = tls {
        builder = tls.reqwest(builder)?;
    }
    builder.build().map_err(|e| Error::Fetch {
        url: String::new(),
        reason: format!("building the HTTP client: {e}"),
    })
}

/// An error with its causes, e.g. `error sending request: connection refused`.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
