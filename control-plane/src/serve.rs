//! `meshplug serve`: wires the watcher, ingest, xDS server and admin API together.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use xds::{AdsServer, NodeInfo, SnapshotCache, XdsEvent};

use crate::Error;
use crate::admin::{self, AdminState};
use crate::artifact::{ArtifactKind, WatchedFile, classify};
use crate::catalog::{Catalog, SharedCatalog};
use crate::check::Limits;
use crate::debounce::Quiet;
use crate::idle::IdleTimeout;
use crate::ingest::{Ingest, IngestOutcome, unix_ms};
use crate::manifest_watch::ManifestWatcher;
use crate::metrics_sink::MetricsSink;
pub use crate::mode::Mode;
use crate::registry::Registry;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::{Decision, StateFiles};
use crate::rollout::{Engine, Policy};
use crate::store::Store;
use crate::watcher::ArtifactWatcher;
use crate::xds_metrics::XdsMetrics;

mod reload;

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
    pub preflight: Option<meshplug_preflight::Limits>,
    /// How new versions roll out.
    pub rollout_policy: Policy,
    /// Where alerts are POSTed as JSON, if anywhere.
    pub alert_webhook: Option<String>,
    /// The bearer token the admin API's mutations require; `None` leaves them open.
    pub admin_token: Option<String>,
    /// The kind a filter runs when the folder has both its `.wasm` and its `.so`.
    pub prefer_kind: ArtifactKind,
    /// Where plugins are declared: the artifacts folder alone, or manifests.
    pub mode: Mode,
    /// Bounds on what clients and files can make the control plane hold or wait for.
    pub guards: Guards,
}

/// Bounds on connections and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    /// An xDS connection that sends no byte for this long is closed. Live proxies are pinged
    /// at a third of it, so they always answer in time.
    pub xds_idle_timeout: std::time::Duration,
    /// The largest node (id, cluster, metadata) a stream may open with.
    pub max_node_bytes: usize,
    /// A proxy disconnected this long is forgotten (its node record, signals and snapshot),
    /// unless a rollout in progress counts it.
    pub forget_nodes_after: std::time::Duration,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            xds_idle_timeout: std::time::Duration::from_secs(90),
            max_node_bytes: xds::DEFAULT_MAX_NODE_BYTES,
            forget_nodes_after: std::time::Duration::from_secs(3600),
        }
    }
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
    let ready = Arc::new(AtomicBool::new(false));
    let mut prometheus = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(RolloutMetrics::register(&mut prometheus));
    let refusals = Arc::new(crate::refusals::Refusals::register(&mut prometheus));
    let xds_metrics =
        Arc::new(XdsMetrics::register(&mut prometheus).counting_refusals(Arc::clone(&refusals)));
    let (alert_tx, alert_rx) = mpsc::unbounded_channel();
    let store = Store::open(config.data_dir.join("store"))?;
    let state_files =
        StateFiles::open(config.data_dir.join("rollouts"))?.guarding(store.has_artifacts());
    let mut engine = Engine::open(
        config.rollout_policy.clone(),
        state_files,
        Arc::clone(&cache),
        metrics,
        Some(alert_tx),
    )?;
    engine.resume_clocks(unix_ms());
    let engine = Arc::new(Mutex::new(engine));
    let manifests: SharedCatalog = Arc::new(RwLock::new(Arc::new(Catalog::new())));
    let ingest = Ingest {
        folder: artifacts_dir.clone(),
        store,
        limits: config.limits,
        registry: Arc::clone(&registry),
        engine: Arc::clone(&engine),
        preflight: preflight_sandbox(config.preflight)?,
        prefer: config.prefer_kind,
        mode: config.mode.clone(),
        manifests: Arc::clone(&manifests),
        serial: Arc::default(),
        refusals: Arc::clone(&refusals),
    };
    ingest.resume_published();

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
        xds_metrics,
        config.guards,
        stop_rx.clone(),
    ));
    let tick_task = tokio::spawn(tick_rollouts(
        Arc::clone(&engine),
        config.guards.forget_nodes_after,
        stop_rx.clone(),
    ));
    tokio::spawn(send_alerts(alert_rx, config.alert_webhook.clone()));
    if config.admin_token.is_none() {
        tracing::warn!(
            "no admin token: rollout controls on the admin API are open to anyone who can reach it"
        );
    }
    let admin_state = AdminState {
        registry,
        ready: Arc::clone(&ready),
        engine: Arc::clone(&engine),
        prometheus: Arc::new(prometheus),
        token: config.admin_token.clone().map(Arc::from),
        manifests: config.mode.governed().then(|| Arc::clone(&manifests)),
    };
    let admin_task = tokio::spawn(serve_admin(admin_listener, admin_state, stop_rx.clone()));

    let manifest_dirs = manifest_dirs(&config.mode)?;
    let _manifest_watcher = if manifest_dirs.is_empty() {
        None
    } else {
        let (watcher, rx) = ManifestWatcher::start(&manifest_dirs)?;
        let reloader = reload::Reloader {
            ingest: ingest.clone(),
            dirs: manifest_dirs.clone(),
        };
        // The first read completes before any build is looked at; later ones run on their
        // own task, so a slow reload never holds up ingest or shutdown.
        reloader.reload().await;
        tokio::spawn(reloader.follow(rx, stop_rx.clone()));
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
fn manifest_dirs(mode: &Mode) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    for dir in mode.manifest_dirs() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating manifest folder", dir))?;
        dirs.push(dir.canonicalize().map_err(Error::io("resolving", dir))?);
    }
    Ok(dirs)
}

fn preflight_sandbox(
    limits: Option<meshplug_preflight::Limits>,
) -> Result<Option<Arc<meshplug_preflight::Preflight>>, Error> {
    match limits {
        Some(limits) => Ok(Some(Arc::new(
            meshplug_preflight::Preflight::new(limits).map_err(Error::Preflight)?,
        ))),
        None => {
            tracing::warn!(
                "pre-flight is off: artifacts reach proxies with structural checks only"
            );
            Ok(None)
        }
    }
}

async fn tick_rollouts(
    engine: Arc<Mutex<Engine>>,
    forget_after: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = unix_ms();
                let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
                engine.tick(now);
                if now >= last_sweep + SWEEP_MS {
                    last_sweep = now;
                    let forget_ms = u64::try_from(forget_after.as_millis()).unwrap_or(u64::MAX);
                    let gone = engine.forget_disconnected(now, forget_ms);
                    drop(engine);
                    if !gone.is_empty() {
                        tracing::info!(nodes = gone.len(), "forgot proxies disconnected too long");
                    }
                }
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// How often disconnected proxies are looked for.
const SWEEP_MS: u64 = 1000;

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
            tracing::info!(plugin = %name, %sha256, "unchanged; nothing to push");
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
    let mut ignored = crate::watcher::IgnoredNames::default();
    let mut files: Vec<(bool, PathBuf)> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let Some(watched) = classify(&path) else {
                ignored.note(&path);
                return None;
            };
            let is_artifact = matches!(watched, WatchedFile::Artifact { .. });
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
    xds_metrics: Arc<XdsMetrics>,
    guards: Guards,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let refusals = xds_metrics.refusals();
    let events = Arc::clone(&engine);
    // The one handler of stream events: the node model (in the engine) takes each.
    let sink = move |event: XdsEvent| {
        log_event(&event);
        xds_metrics.observe(&event);
        let mut engine = events.lock().unwrap_or_else(PoisonError::into_inner);
        engine.on_event(&event, unix_ms());
        xds_metrics.set_connected(engine.nodes().connected_count());
    };
    let connects = Arc::clone(&engine);
    let grouper = Arc::new(move |node: &NodeInfo| {
        connects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_connect(node, unix_ms())
    });
    let server = AdsServer::with_grouper(cache, sink, grouper);
    server.set_max_node_bytes(guards.max_node_bytes);
    let closer = server.clone();
    let metrics_stop = stop.clone();
    let idle = guards.xds_idle_timeout;
    let incoming = TcpListenerStream::new(listener).map(move |accepted| {
        accepted.map(|stream| {
            let stream = IdleTimeout::new(stream, idle);
            match &refusals {
                Some(refusals) => stream.counted(Arc::clone(refusals)),
                None => stream,
            }
        })
    });
    // On stop: no new connections; each ADS stream finishes the response in hand and ends;
    // metrics streams end; then the server returns.
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(idle / 3))
        .http2_keepalive_timeout(Some(idle / 3))
        .add_service(server.into_service())
        .add_service(MetricsSink::new(engine, metrics_stop).into_service())
        .serve_with_incoming_shutdown(incoming, async move {
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
        XdsEvent::Refused { node, reason, .. } => {
            tracing::warn!(node = %node.id, cluster = %node.cluster, %reason, "stream refused");
        }
    }
}
