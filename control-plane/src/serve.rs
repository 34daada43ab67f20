//! `meshplug serve`: opens the stores and the engine, then runs each concern on its own task:
//! the gRPC server for ADS and stats (`grpc`), the admin API (`admin`), alerts (`alerts`), the engine's clock
//! (`ticks`), manifest reloads (`reload`), the artifacts folder (`folder`) and, when
//! configured, the artifact service for other hosts (`admin::serve_artifacts`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use xds::SnapshotCache;

use crate::Error;
use crate::admin::AdminState;
use crate::artifact::ArtifactKind;
use crate::artifacts::{ArtifactMetrics, ArtifactService};
use crate::catalog::Catalog;
use crate::check::Limits;
use crate::debounce::Quiet;
use crate::ingest::{Ingest, unix_ms};
pub use crate::mode::Mode;
use crate::registry::Registry;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::state::{Decision, StateFiles};
use crate::rollout::{Engine, Policy};
use crate::store::Store;
use crate::tls::{ServerTls, TlsFiles};
use crate::watcher::ArtifactWatcher;
use crate::xds_metrics::XdsMetrics;

mod admin;
mod alerts;
mod folder;
pub(crate) use folder::write_ready_file;
mod grpc;
mod reload;
mod replicated;
mod ticks;

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
    /// The artifact service, for proxies behind `meshplug agent` on other hosts; `None`
    /// serves every proxy local paths.
    pub artifacts: Option<ArtifactsConfig>,
    /// A file to write the bound addresses to, as JSON, once serving.
    pub ready_file: Option<PathBuf>,
    /// Artifact check limits.
    pub limits: Limits,
    /// Watcher quiet periods.
    pub quiet: Quiet,
    /// Pre-flight sandbox budgets; `None` turns pre-flight off.
    pub preflight: Option<meshplug_preflight::Limits>,
    /// The Envoy 1.40 binary that validates built-in filters (`spec.envoyFilter`) before any
    /// push; `None`: `envoy` on `PATH`.
    pub envoy: Option<PathBuf>,
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
    /// Keys every build must be signed with (`<file>.minisig`); empty: not checked.
    pub trusted_keys: Vec<meshplug_core::signature::TrustedKey>,
    /// TLS on every listener; `None`: plain TCP, the loopback default.
    pub tls: Option<ServeTls>,
    /// Serve the admin API on an address other than loopback without TLS.
    pub insecure_admin: bool,
    /// Run as one of several replicas on etcd; `None`: the only control plane, state in
    /// files under `data_dir`.
    pub replicas: Option<crate::replica::ReplicaConfig>,
}

/// The control plane's certificate, and the CAs its clients' certificates chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeTls {
    /// The server certificate chain (PEM), for every listener.
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// Proxies' and agents' CA: with it, ADS, stats and the artifact service require a
    /// client certificate, and ADS and stats bind each node id to its certificate.
    pub client_ca: Option<PathBuf>,
    /// Admin clients' CA: with it, the admin API requires a client certificate too.
    pub admin_client_ca: Option<PathBuf>,
}

/// Each listener's TLS, loaded before anything is bound (a bad file stops `serve` at once).
#[derive(Debug, Default)]
struct ListenerTls {
    xds: Option<ServerTls>,
    artifacts: Option<ServerTls>,
    admin: Option<ServerTls>,
}

impl ListenerTls {
    fn load(config: &ServeConfig) -> Result<Self, Error> {
        let admin_ip = config.admin_addr.ip();
        let Some(tls) = &config.tls else {
            if !admin_ip.is_loopback() && !config.insecure_admin {
                return Err(Error::Tls(format!(
                    "refusing to serve the admin API on {} without TLS: its token and controls \
                     would cross the network in the clear. Give --tls-cert and --tls-key, bind \
                     it to loopback, or pass --insecure-admin",
                    config.admin_addr
                )));
            }
            return Ok(Self::default());
        };
        let files = |client_ca: &Option<PathBuf>| TlsFiles {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            client_ca: client_ca.clone(),
        };
        Ok(Self {
            xds: Some(ServerTls::load(files(&tls.client_ca), &[b"h2"])?),
            artifacts: match config.artifacts {
                Some(_) => Some(ServerTls::load(files(&tls.client_ca), &[b"http/1.1"])?),
                None => None,
            },
            admin: Some(ServerTls::load(
                files(&tls.admin_client_ca),
                &[b"http/1.1"],
            )?),
        })
    }

    /// Reloads each from its files when they change, until `stop`.
    fn watch(&self, stop: &tokio::sync::watch::Receiver<bool>) {
        let listeners = [&self.xds, &self.artifacts, &self.admin];
        let listeners: Vec<ServerTls> = listeners.into_iter().flatten().cloned().collect();
        crate::tls::spawn_reloads(listeners, stop.clone());
    }
}

/// Memory the artifact service may hold the artifacts being fetched in (each at most a
/// quarter of it; larger ones stream from the file).
const HOT_ARTIFACT_BYTES: usize = 64 << 20;

/// Where the artifact service listens and how much it streams at once.
#[derive(Debug, Clone)]
pub struct ArtifactsConfig {
    /// Its address.
    pub addr: SocketAddr,
    /// The base URL proxies' agents are told to fetch from; default `http://<bound addr>`.
    pub public_url: Option<String>,
    /// Bodies streamed at once; more fetches wait their turn.
    pub max_in_flight: usize,
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
    /// The artifact service, when one runs.
    #[serde(default)]
    pub artifacts: Option<SocketAddr>,
}

/// Runs the control plane until `shutdown` completes.
pub async fn run(config: ServeConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let tls = ListenerTls::load(&config)?;
    let replica = match &config.replicas {
        Some(replicas) => Some(Arc::new(replicated::join(&config, replicas).await?)),
        None => None,
    };
    let (parts, alerts) = Parts::open(&config, replica.as_deref())?;
    let xds_listener = bind(config.xds_addr).await?;
    let admin_listener = bind(config.admin_addr).await?;
    let artifacts_listener = match &config.artifacts {
        Some(artifacts) => Some(bind(artifacts.addr).await?),
        None => None,
    };
    let bound = BoundAddrs {
        xds: local_addr(&xds_listener)?,
        admin: local_addr(&admin_listener)?,
        artifacts: artifacts_listener.as_ref().map(local_addr).transpose()?,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tls.watch(&stop_rx);
    let scheme = if tls.artifacts.is_some() {
        "https"
    } else {
        "http"
    };
    let artifacts = (artifacts_listener, &config.artifacts, bound.artifacts);
    let mut artifacts_url = None;
    if let (Some(listener), Some(artifacts), Some(addr)) = artifacts {
        let url = artifacts
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        artifacts_url = Some(url.clone());
        let service = parts.artifact_service(artifacts.max_in_flight);
        let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
        engine.set_artifacts_url(Some(url));
        drop(engine);
        tokio::spawn(admin::serve_artifacts(
            (listener, tls.artifacts.clone()),
            service,
            Arc::clone(&parts.ingest.refusals),
            stop_rx.clone(),
        ));
    }
    let (leading_tx, mut leading) = tokio::sync::watch::channel(replica.is_none());
    let mut replica_tasks = Vec::new();
    if let Some(replica) = &replica {
        let admin_scheme = if tls.admin.is_some() { "https" } else { "http" };
        let member = replicated::member(replica, &bound, admin_scheme, artifacts_url);
        replica.announce(&member).await?;
        let parts = replicated::parts(&config, &parts);
        replica_tasks = Arc::clone(replica).start(parts, leading_tx, stop_rx.clone());
    }
    let tasks = [
        tokio::spawn(grpc::serve_xds(
            (xds_listener, tls.xds.clone()),
            Arc::clone(&parts.cache),
            Arc::clone(&parts.engine),
            Arc::clone(&parts.xds_metrics),
            config.guards,
            stop_rx.clone(),
        )),
        tokio::spawn(ticks::tick_rollouts(
            Arc::clone(&parts.engine),
            config.guards.forget_nodes_after,
            stop_rx.clone(),
        )),
        tokio::spawn(admin::serve_admin(
            (admin_listener, tls.admin.clone()),
            parts.admin.clone(),
            Arc::clone(&parts.ingest.refusals),
            stop_rx.clone(),
        )),
    ];
    tokio::spawn(alerts::send_alerts(alerts, config.alert_webhook.clone()));
    let pending = Arc::new(AtomicBool::new(false));
    let manifests = reload::start(
        &config.mode,
        &parts.ingest,
        Arc::clone(&pending),
        leading.clone(),
        stop_rx,
    )
    .await?;
    let reloader = manifests.as_ref().map(|(_, reloader)| reloader);
    let (watcher, mut complete) =
        ArtifactWatcher::start(&parts.ingest.folder, config.quiet, pending)?;
    // The only control plane leads from the start; a replica may have taken the lead already
    // (the change is seen here, not in the loop).
    if *leading.borrow_and_update() {
        folder::read_all(&parts.ingest, reloader, &watcher).await?;
    }
    parts.admin.ready.store(true, Ordering::Release);
    if let Some(path) = &config.ready_file {
        folder::write_ready_file(path, &bound)?;
    }
    tracing::info!(xds = %bound.xds, admin = %bound.admin, artifact_service = ?bound.artifacts,
        artifacts = %parts.ingest.folder.display(), "serving");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            path = complete.recv() => match path {
                // Only the leader ingests; a follower's folder is read when it takes the lead.
                Some(path) if *leading.borrow() => {
                    if let Some(reloader) = reloader {
                        reloader.catch_up().await;
                    }
                    folder::handle_path(&parts.ingest, &watcher, path).await;
                }
                Some(path) => tracing::debug!(path = %path.display(), "not leading: not ingested"),
                None => break,
            },
            Ok(()) = leading.changed(), if replica.is_some() => {
                if *leading.borrow_and_update() {
                    folder::read_all(&parts.ingest, reloader, &watcher).await?;
                }
            }
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for task in tasks.into_iter().chain(replica_tasks) {
        let _ = task.await;
    }
    let mut engine = parts.engine.lock().unwrap_or_else(PoisonError::into_inner);
    engine.save_nodes()?;
    tracing::info!("stopped");
    Ok(())
}

/// What the servers and tasks share: the stores opened, the engine resumed, ingest wired,
/// and what the admin API reads.
struct Parts {
    cache: Arc<SnapshotCache>,
    engine: Arc<Mutex<Engine>>,
    ingest: Ingest,
    xds_metrics: Arc<XdsMetrics>,
    artifact_metrics: Arc<ArtifactMetrics>,
    admin: AdminState,
}

impl Parts {
    /// The artifact service over the store, withholding what the engine says to.
    fn artifact_service(&self, max_in_flight: usize) -> ArtifactService {
        let engine = Arc::clone(&self.engine);
        ArtifactService {
            store: self.ingest.store.clone(),
            withheld: Arc::new(move |sha: &str| {
                let engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
                engine.artifact_withheld(sha)
            }),
            permits: Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
            queue_timeout: std::time::Duration::from_secs(10),
            metrics: Arc::clone(&self.artifact_metrics),
            hot: Arc::new(crate::artifacts::HotArtifacts::new(HOT_ARTIFACT_BYTES)),
        }
    }

    /// The parts, and the receiving end of the engine's alerts. With `replica`, the engine
    /// starts as a follower on its etcd state.
    fn open(
        config: &ServeConfig,
        replica: Option<&crate::replica::Replica>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Decision>), Error> {
        let dir = &config.artifacts_dir;
        std::fs::create_dir_all(dir).map_err(Error::io("creating artifacts folder", dir))?;
        let folder = dir.canonicalize().map_err(Error::io("resolving", dir))?;
        let cache = Arc::new(SnapshotCache::new());
        let mut prometheus = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(RolloutMetrics::register(&mut prometheus));
        let refusals = Arc::new(crate::refusals::Refusals::register(&mut prometheus));
        let xds_metrics = XdsMetrics::register(&mut prometheus);
        let xds_metrics = Arc::new(xds_metrics.counting_refusals(Arc::clone(&refusals)));
        let artifact_metrics = Arc::new(ArtifactMetrics::register(&mut prometheus));
        let (alert_tx, alert_rx) = mpsc::unbounded_channel();
        let store = Store::open(config.data_dir.join("store"))?;
        let policy = config.rollout_policy.clone();
        let alerts = Some(alert_tx);
        let engine = match replica {
            Some(replica) => {
                replica.metrics().registered_in(&mut prometheus);
                let state = replica.follower_store(&config.data_dir.join("rollouts"))?;
                let mut engine = Engine::open(policy, state, Arc::clone(&cache), metrics, alerts)?;
                engine.start_following(store.clone());
                engine
            }
            None => {
                let state_files = StateFiles::open(config.data_dir.join("rollouts"))?
                    .guarding(store.has_artifacts());
                let mut engine =
                    Engine::open(policy, state_files, Arc::clone(&cache), metrics, alerts)?;
                engine.resume_clocks(unix_ms());
                engine
            }
        };
        let engine = Arc::new(Mutex::new(engine));
        let ingest = Ingest {
            folder,
            store,
            limits: config.limits,
            registry: Arc::new(Mutex::new(Registry::new())),
            engine: Arc::clone(&engine),
            preflight: preflight_sandbox(config.preflight)?,
            prefer: config.prefer_kind,
            mode: config.mode.clone(),
            manifests: Arc::new(RwLock::new(Arc::new(Catalog::new()))),
            serial: Arc::default(),
            refusals,
            trusted_keys: Arc::new(config.trusted_keys.clone()),
            envoy: config.envoy.clone(),
        };
        ingest.resume_published();
        if config.admin_token.is_none() {
            tracing::warn!(
                "no admin token: rollout controls on the admin API are open to anyone who can reach it"
            );
        }
        let admin = AdminState {
            registry: Arc::clone(&ingest.registry),
            ready: Arc::new(AtomicBool::new(false)),
            engine: Arc::clone(&engine),
            prometheus: Arc::new(prometheus),
            token: config.admin_token.clone().map(Arc::from),
            // Folder mode reads the artifacts folder's cluster manifests: shown too.
            manifests: Some(Arc::clone(&ingest.manifests)),
            replicas: replica.map(crate::replica::Replica::view),
        };
        let parts = Self {
            cache,
            engine,
            ingest,
            xds_metrics,
            artifact_metrics,
            admin,
        };
        Ok((parts, alert_rx))
    }
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
