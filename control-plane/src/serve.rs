//! `meshplug serve`: wires the watcher, ingest, xDS server and admin API together.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use xds::{AdsServer, NodeInfo, SnapshotCache, XdsEvent};

use crate::Error;
use crate::admin::{self, AdminState};
use crate::artifact::{ArtifactKind, WatchedFile, classify};
use crate::catalog::{Catalog, reconcile};
use crate::check::Limits;
use crate::debounce::Quiet;
use crate::fleet::Fleet;
use crate::ingest::{Ingest, IngestOutcome, unix_ms};
use crate::manifest_watch::{self, ManifestWatcher};
use crate::metrics_sink::MetricsSink;
use crate::registry::Registry;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::{Decision, StateFiles};
use crate::rollout::{Engine, Policy};
use crate::store::Store;
use crate::watcher::ArtifactWatcher;
use crate::xds_metrics::XdsMetrics;

/// How often the rollout engine looks at its rollouts.
const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Settings of `meshplug serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The folder watched for `<name>.wasm` and `<name>.json`.
    pub artifacts_dir: PathBuf,
    /// Where the store and state live.
    pub data_dir: PathBuf,
    /// The ADS gRPC address.
    pub xds_addr: SocketAddr,
    /// The admin HTTP address.
    pub admin_addr: SocketAddr,
    /// A file to write the bound addresses to, as JSON, once serving.
    pub ready_file: Option<PathBuf>,
    /// Artifact check limits.
    pub limits: Limits,
    /// Watcher quiet periods.
    pub quiet: Quiet,
    /// Pre-flight sandbox budgets; `None` turns pre-flight off.
    pub preflight: Option<sandbox::Limits>,
    /// How new versions roll out.
    pub rollout_policy: Policy,
    /// Where alerts are POSTed as JSON, if anywhere.
    pub alert_webhook: Option<String>,
    /// The bearer token the admin API's mutations require; `None` leaves them open.
    pub admin_token: Option<String>,
    /// The kind a filter runs when the folder has both its `.wasm` and its `.so`.
    pub prefer_kind: ArtifactKind,
    /// The watched folder of `kind: Plugin` manifests; set, manifests govern which filters
    /// exist and where they go.
    pub plugins_dir: Option<PathBuf>,
    /// The watched folder of `kind: Listener` and `kind: Cluster` manifests; set (with
    /// `plugins_dir`), meshplug serves LDS, RDS and CDS with composed filter chains.
    pub mesh_dir: Option<PathBuf>,
}

/// The addresses actually bound.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct BoundAddrs {
    /// ADS gRPC.
    pub xds: SocketAddr,
    /// Admin HTTP.
    pub admin: SocketAddr,
}

/// Runs the control plane until `shutdown` completes.
pub async fn run(config: ServeConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    std::fs::create_dir_all(&config.artifacts_dir).map_err(Error::io(
        "creating artifacts folder",
        &config.artifacts_dir,
    ))?;
    let artifacts_dir = config
        .artifacts_dir
        .canonicalize()
        .map_err(Error::io("resolving", &config.artifacts_dir))?;
    let cache = Arc::new(SnapshotCache::new());
    let registry = Arc::new(Mutex::new(Registry::new()));
    let fleet = Arc::new(Mutex::new(Fleet::new()));
    let ready = Arc::new(AtomicBool::new(false));
    let mut prometheus = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(RolloutMetrics::register(&mut prometheus));
    let xds_metrics = Arc::new(XdsMetrics::register(&mut prometheus));
    let (alert_tx, alert_rx) = mpsc::unbounded_channel();
    let engine = Arc::new(Mutex::new(Engine::open(
        config.rollout_policy.clone(),
        StateFiles::open(config.data_dir.join("rollouts"))?,
        Arc::clone(&cache),
        metrics,
        Some(alert_tx),
    )?));
    let manifests = config
        .plugins_dir
        .as_ref()
        .map(|_| Arc::new(RwLock::new(Arc::new(Catalog::new()))));
    let ingest = Ingest {
        store: Store::open(config.data_dir.join("store"))?,
        limits: config.limits,
        registry: Arc::clone(&registry),
        engine: Arc::clone(&engine),
        preflight: preflight_sandbox(config.preflight)?,
        prefer: config.prefer_kind,
        manifests: manifests.clone(),
    };

    let xds_listener = bind(config.xds_addr).await?;
    let admin_listener = bind(config.admin_addr).await?;
    let bound = BoundAddrs {
        xds: local_addr(&xds_listener)?,
        admin: local_addr(&admin_listener)?,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let xds_task = tokio::spawn(serve_xds(
        xds_listener,
        cache,
        Arc::clone(&engine),
        Arc::clone(&fleet),
        xds_metrics,
        stop_rx.clone(),
    ));
    let tick_task = tokio::spawn(tick_rollouts(Arc::clone(&engine), stop_rx.clone()));
    tokio::spawn(send_alerts(alert_rx, config.alert_webhook.clone()));
    if config.admin_token.is_none() {
        tracing::warn!(
            "no admin token: rollout controls on the admin API are open to anyone who can reach it"
        );
    }
    let admin_state = AdminState {
        registry,
        fleet,
        ready: Arc::clone(&ready),
        engine: Arc::clone(&engine),
        prometheus: Arc::new(prometheus),
        token: config.admin_token.clone().map(Arc::from),
        manifests: manifests.clone(),
    };
    let admin_task = tokio::spawn(serve_admin(admin_listener, admin_state, stop_rx));

    let manifest_dirs = manifest_dirs(&config)?;
    let serve_mesh = config.mesh_dir.is_some();
    let mut reloads = None;
    let _manifest_watcher = if manifest_dirs.is_empty() {
        None
    } else {
        let (watcher, rx) = ManifestWatcher::start(&manifest_dirs)?;
        reloads = Some(rx);
        reload_manifests(&ingest, &engine, &manifest_dirs, serve_mesh).await;
        Some(watcher)
    };
    let (watcher, mut complete) = ArtifactWatcher::start(&artifacts_dir, config.quiet)?;
    for path in existing_files(&artifacts_dir)? {
        handle_path(&ingest, &watcher, path).await;
    }
    ready.store(true, Ordering::Release);
    if let Some(path) = &config.ready_file {
        write_ready_file(path, &bound)?;
    }
    tracing::info!(xds = %bound.xds, admin = %bound.admin, artifacts = %artifacts_dir.display(), "serving");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            path = complete.recv() => match path {
                Some(path) => handle_path(&ingest, &watcher, path).await,
                None => break,
            },
            Some(()) = next_reload(&mut reloads) => {
                reload_manifests(&ingest, &engine, &manifest_dirs, serve_mesh).await;
            }
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = xds_task.await;
    let _ = tick_task.await;
    let _ = admin_task.await;
    engine
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .save_nodes()?;
    tracing::info!("stopped");
    Ok(())
}

/// The manifest folders to watch (created if missing), plugins first.
fn manifest_dirs(config: &ServeConfig) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    for dir in [&config.plugins_dir, &config.mesh_dir]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir).map_err(Error::io("creating manifest folder", dir))?;
        dirs.push(dir.canonicalize().map_err(Error::io("resolving", dir))?);
    }
    Ok(dirs)
}

async fn next_reload(reloads: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match reloads {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads the manifest folders again: what parses and fits goes in force, each refusal is
/// logged with file, line and field, and the engine and ingest follow.
async fn reload_manifests(
    ingest: &Ingest,
    engine: &Arc<Mutex<Engine>>,
    dirs: &[PathBuf],
    serve_mesh: bool,
) {
    let Some(manifests) = ingest.manifests.clone() else {
        return;
    };
    let scanned = match manifest_watch::scan(dirs) {
        Ok(scanned) => scanned,
        Err(err) => {
            tracing::error!(error = %err, "reading manifests; the ones in force stay");
            return;
        }
    };
    let previous = Arc::clone(&manifests.read().unwrap_or_else(PoisonError::into_inner));
    let catalog = Arc::new(reconcile(&previous, &scanned));
    for status in catalog.files.values() {
        let already_told =
            previous.files.get(&status.file).map(|s| &s.error) == Some(&status.error);
        if let Some(error) = status.error.as_ref().filter(|_| !already_told) {
            let kept = status.in_force.is_some();
            tracing::warn!(file = %error.file, line = ?error.line, field = %error.field,
                reason = %error.message, previous_kept = kept, error = %error, "manifest refused");
        }
    }
    if *catalog != *previous {
        tracing::info!(
            plugins = catalog.plugins.len(),
            listeners = catalog.listeners.len(),
            clusters = catalog.clusters.len(),
            "manifests in force"
        );
    }
    engine
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set_manifests(Arc::clone(&catalog), serve_mesh);
    let worker = ingest.clone();
    match tokio::task::spawn_blocking(move || worker.apply_catalog(catalog)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "applying manifests"),
        Err(err) => tracing::error!(error = %err, "applying manifests: task failed"),
    }
}

fn preflight_sandbox(
    limits: Option<sandbox::Limits>,
) -> Result<Option<Arc<sandbox::Preflight>>, Error> {
    match limits {
        Some(limits) => Ok(Some(Arc::new(
            sandbox::Preflight::new(limits).map_err(Error::Preflight)?,
        ))),
        None => {
            tracing::warn!(
                "pre-flight is off: artifacts reach proxies with structural checks only"
            );
            Ok(None)
        }
    }
}

async fn tick_rollouts(engine: Arc<Mutex<Engine>>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                engine.lock().unwrap_or_else(PoisonError::into_inner).tick(unix_ms());
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// POSTs each alert's decision-log entry to the webhook, if one is set. A failed POST is
/// logged; the alert was already raised in the log and the metrics.
async fn send_alerts(mut alerts: mpsc::UnboundedReceiver<Decision>, webhook: Option<String>) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "alert webhook client");
            return;
        }
    };
    while let Some(alert) = alerts.recv().await {
        let Some(url) = &webhook else { continue };
        match client.post(url).json(&alert).send().await {
            Ok(response) if response.status().is_success() => {
                tracing::info!(%url, seq = alert.seq, "alert delivered to the webhook");
            }
            Ok(response) => {
                tracing::error!(%url, status = %response.status(), "alert webhook refused")
            }
            Err(err) => tracing::error!(%url, error = %err, "alert webhook failed"),
        }
    }
}

async fn handle_path(ingest: &Ingest, watcher: &ArtifactWatcher, path: PathBuf) {
    let worker = ingest.clone();
    let job_path = path.clone();
    let result = tokio::task::spawn_blocking(move || worker.handle(&job_path)).await;
    match result {
        Ok(Ok(IngestOutcome::NotSettled)) => {
            tracing::debug!(path = %path.display(), "still changing; will look again");
            if path.exists() {
                watcher.recheck(&path);
            }
        }
        Ok(Ok(IngestOutcome::Unchanged { name, sha256 })) => {
            tracing::info!(filter = %name, %sha256, "unchanged; nothing to push");
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::error!(path = %path.display(), error = %err, "ingest failed"),
        Err(err) => tracing::error!(path = %path.display(), error = %err, "ingest task failed"),
    }
}

/// The files already in the folder at startup: configurations first, so each artifact is
/// published with its configuration.
fn existing_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(Error::io("listing", dir))?;
    let mut files: Vec<(bool, PathBuf)> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let is_artifact = matches!(classify(&path)?, WatchedFile::Artifact { .. });
            Some((is_artifact, path))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(Error::io("binding", addr.to_string()))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(Error::io("reading bound address", "listener"))
}

fn write_ready_file(path: &Path, bound: &BoundAddrs) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(bound)?).map_err(Error::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("renaming", path))
}

async fn serve_xds(
    listener: TcpListener,
    cache: Arc<SnapshotCache>,
    engine: Arc<Mutex<Engine>>,
    fleet: Arc<Mutex<Fleet>>,
    xds_metrics: Arc<XdsMetrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let events = Arc::clone(&engine);
    let sink = move |event: XdsEvent| {
        log_event(&event);
        xds_metrics.observe(&event);
        let now = unix_ms();
        fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(&event, now);
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_event(&event, now);
    };
    let connects = Arc::clone(&engine);
    let grouper = Arc::new(move |node: &NodeInfo| {
        connects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_connect(node, unix_ms())
    });
    let server = AdsServer::with_grouper(cache, sink, grouper);
    let closer = server.clone();
    let metrics_stop = stop.clone();
    // On stop: no new connections; each ADS stream finishes the response in hand and ends;
    // metrics streams end; then the server returns.
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(server.into_service())
        .add_service(MetricsSink::new(engine, metrics_stop).into_service())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            closer.close();
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "xDS server failed");
    }
}

async fn serve_admin(
    listener: TcpListener,
    state: AdminState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let result = axum::serve(listener, admin::router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "admin server failed");
    }
}

fn log_event(event: &XdsEvent) {
    match event {
        XdsEvent::StreamOpened { node, stream } => {
            tracing::info!(node = %node.id, cluster = %node.cluster, stream, "node connected");
        }
        XdsEvent::StreamClosed { node, stream } => {
            tracing::info!(node = %node.id, stream, "node disconnected");
        }
        XdsEvent::Sent {
            node,
            type_url,
            resources,
            nonce,
            ..
        } => {
            tracing::info!(node = %node.id, %type_url, ?resources, %nonce, "pushed");
        }
        XdsEvent::Ack {
            node,
            type_url,
            resources,
            ..
        } => {
            tracing::info!(node = %node.id, %type_url, ?resources, "ACKed");
        }
        XdsEvent::Nack {
            node,
            type_url,
            resources,
            error,
            ..
        } => {
            tracing::warn!(node = %node.id, %type_url, ?resources, %error, "NACKed");
        }
    }
}
