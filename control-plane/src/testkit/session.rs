//! One test session: fake upstreams, an in-process control plane in folder mode serving the
//! filters under test, and a real Envoy started from the rendered configuration. Everything
//! is on loopback and stopped on drop (Envoy by PID, the control plane by its shutdown).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meshplug_preflight::UpstreamResponse;
use serde_json::Value as Json;

use super::fake::Fake;
use super::render::{RenderInputs, render};
use crate::Error;
use crate::serve::BoundAddrs;

/// What a session starts from.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The user's Envoy configuration (YAML, parsed).
    pub envoy_config: serde_norway::Value,
    /// The filters under test: name → build (`.wasm` or `.so`).
    pub filters: BTreeMap<String, PathBuf>,
    /// The faked clusters and what each answers.
    pub upstreams: BTreeMap<String, UpstreamResponse>,
    /// Starting configurations (text) that replace a filter's inline one.
    pub configs: BTreeMap<String, String>,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Where the rendered configuration, the logs and the control plane's data go.
    pub dir: PathBuf,
}

/// A filter's build and configuration text, as placed in the watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    pub build: PathBuf,
    pub config: Option<String>,
}

/// A running session.
pub struct Session {
    pub(super) http: reqwest::Client,
    /// The clients requests go out on: HTTP/1.1, then HTTP/2.
    pub(super) clients: [reqwest::Client; 2],
    artifacts: PathBuf,
    admin_api: String,
    pub(super) envoy_admin: String,
    pub(super) listeners: Vec<(String, SocketAddr)>,
    node_id: String,
    pub(super) initial: BTreeMap<String, Placed>,
    pub(super) current: BTreeMap<String, Placed>,
    pub(super) fakes: BTreeMap<String, Fake>,
    /// The rendered configuration Envoy runs.
    pub rendered: PathBuf,
    /// Envoy's log.
    pub envoy_log: PathBuf,
    envoy: Child,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("listeners", &self.listeners)
            .field("rendered", &self.rendered)
            .finish_non_exhaustive()
    }
}

fn setup(what: impl std::fmt::Display) -> Error {
    Error::TestSetup(what.to_string())
}

impl Session {
    /// Starts everything and waits until Envoy runs every filter under test.
    pub async fn start(spec: &SessionSpec) -> Result<Self, Error> {
        let artifacts = spec.dir.join("artifacts");
        for dir in [&artifacts, &spec.dir.join("data")] {
            std::fs::create_dir_all(dir).map_err(Error::io("creating", dir.clone()))?;
        }
        let mut fakes = BTreeMap::new();
        for (cluster, answer) in &spec.upstreams {
            fakes.insert(cluster.clone(), Fake::start(answer.clone()).await?);
        }
        let (stop, addrs) = start_control_plane(spec).await?;
        let node_id = format!("meshplug-test-{}", std::process::id());
        let (rendered_path, rendered) = render_for(spec, &addrs, &node_id, &fakes)?;
        let initial = starting_filters(spec, &rendered.filter_configs);
        let envoy_log = spec.dir.join("envoy.log");
        let envoy = start_envoy(&spec.envoy, &rendered_path, &envoy_log, &spec.dir)?;
        let mut session = Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(setup)?,
            clients: [
                super::send::client(false).map_err(setup)?,
                super::send::client(true).map_err(setup)?,
            ],
            artifacts,
            admin_api: format!("http://{}", addrs.admin),
            envoy_admin: String::new(),
            listeners: Vec::new(),
            node_id,
            current: BTreeMap::new(),
            initial: initial.clone(),
            fakes,
            rendered: rendered_path,
            envoy_log,
            envoy,
            stop: Some(stop),
        };
        for (name, placed) in &initial {
            session.place(name, placed).await.map_err(setup)?;
        }
        session.envoy_admin = format!("http://{}", wait_admin_address(&spec.dir).await?);
        session.listeners = session.wait_listeners().await?;
        Ok(session)
    }

    /// Swaps filter `name` to `build` (default: the one it runs) and `config` (text; default:
    /// the one it runs), and waits until Envoy runs it; the refusal or NACK is the error.
    pub async fn swap(
        &mut self,
        name: &str,
        build: Option<&Path>,
        config: Option<String>,
    ) -> Result<(), String> {
        let current = self
            .current
            .get(name)
            .ok_or_else(|| format!("{name:?} is not a filter under test"))?;
        let placed = Placed {
            build: build.map_or_else(|| current.build.clone(), Path::to_path_buf),
            config: config.or_else(|| current.config.clone()),
        };
        self.place(name, &placed).await
    }

    /// Puts `placed` in the watched folder as filter `name` and waits until Envoy runs it; a
    /// refusal (by the pre-flight, or Envoy's NACK) is the error.
    pub(super) async fn place(&mut self, name: &str, placed: &Placed) -> Result<(), String> {
        if self.current.get(name) == Some(placed) {
            return Ok(());
        }
        let file = build_file(name, &placed.build)?;
        if let Some(old) = self.current.get(name)
            && build_file(name, &old.build)? != file
        {
            return Err(format!(
                "{name}: a swap keeps the kind of build (.wasm or .so)"
            ));
        }
        let bytes = std::fs::read(&placed.build)
            .map_err(|e| format!("reading {}: {e}", placed.build.display()))?;
        let config = placed.config.clone().unwrap_or_else(|| "{}".into());
        let expected = crate::registry::resource_version(
            &crate::store::sha256_hex(&bytes),
            &crate::registry::settings_sha256(&config, Default::default(), &Default::default()),
        );
        let since = crate::ingest::unix_ms();
        write_in(
            &self.artifacts.join(format!("{name}.config")),
            config.as_bytes(),
        )?;
        write_in(&self.artifacts.join(&file), &bytes)?;
        self.current.insert(name.to_string(), placed.clone());
        self.wait_running(name, &expected, since).await
    }

    async fn api(&self, path: &str) -> Result<Json, String> {
        let url = format!("{}{path}", self.admin_api);
        let answer = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        answer.json().await.map_err(|e| e.to_string())
    }

    /// Waits until this Envoy ACKed version `expected` of `name`; Envoy's NACK of `expected`
    /// is the error, and so is a refusal of the filter after `since` (ms) that no ACK of
    /// `expected` follows within 2 s (a swap of build and configuration passes through a
    /// mix of the old and the new, which may be refused on the way).
    async fn wait_running(&self, name: &str, expected: &str, since: u64) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut refused_at: Option<tokio::time::Instant> = None;
        while tokio::time::Instant::now() < deadline {
            let plugins = self.api("/api/v1/plugins").await?;
            let plugin = plugins["plugins"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == name))
                .cloned()
                .unwrap_or(Json::Null);
            let refused = &plugin["last_rejection"];
            if let Some(reason) = refused["reason"].as_str()
                && refused["at_unix_ms"].as_u64().is_some_and(|at| at >= since)
            {
                let seen = *refused_at.get_or_insert_with(tokio::time::Instant::now);
                if seen.elapsed() >= Duration::from_secs(2) {
                    return Err(format!("{name} was refused: {reason}"));
                }
            }
            match self.node_state(name).await? {
                (Some(acked), _) if acked == expected => return Ok(()),
                (_, Some(nack)) if nack.0 == expected => {
                    return Err(format!("Envoy refused {name}: {}", nack.1));
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{name}: Envoy did not ACK {expected} within 60 s"))
    }

    /// This Envoy's ACKed version of `name` and its last NACK (version, message).
    async fn node_state(
        &self,
        name: &str,
    ) -> Result<(Option<String>, Option<(String, String)>), String> {
        let nodes = self.api("/api/v1/nodes").await?;
        let node = nodes["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["id"] == self.node_id.as_str()))
            .cloned()
            .unwrap_or(Json::Null);
        let filter = &node["filters"][name];
        let acked = filter["acked"].as_str().map(str::to_string);
        let nack = match (
            filter["last_nack"]["version"].as_str(),
            filter["last_nack"]["error"].as_str(),
        ) {
            (Some(v), Some(e)) => Some((v.to_string(), e.to_string())),
            _ => None,
        };
        Ok((acked, nack))
    }

    async fn wait_listeners(&self) -> Result<Vec<(String, SocketAddr)>, Error> {
        let url = format!("{}/listeners?format=json", self.envoy_admin);
        for _ in 0..600 {
            let ready = self
                .http
                .get(format!("{}/ready", self.envoy_admin))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                let body: Json = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(setup)?
                    .json()
                    .await
                    .map_err(setup)?;
                return Ok(listeners_of(&body));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(setup(format!(
            "Envoy did not become ready; see {}",
            self.envoy_log.display()
        )))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Renders the configuration for this session into the work folder, and has Envoy check it.
fn render_for(
    spec: &SessionSpec,
    addrs: &BoundAddrs,
    node_id: &str,
    fakes: &BTreeMap<String, Fake>,
) -> Result<(PathBuf, super::render::Rendered), Error> {
    let fake_addrs = fakes.iter().map(|(k, f)| (k.clone(), f.addr)).collect();
    let names = spec.filters.keys().cloned().collect();
    let inputs = RenderInputs {
        filters: &names,
        fakes: &fake_addrs,
        xds: addrs.xds,
        node_id,
    };
    let rendered = render(&spec.envoy_config, &inputs).map_err(setup)?;
    let path = spec.dir.join("envoy.rendered.yaml");
    let text = serde_norway::to_string(&rendered.config).map_err(setup)?;
    std::fs::write(&path, text).map_err(Error::io("writing", &path))?;
    validate(&spec.envoy, &path)?;
    Ok((path, rendered))
}

/// Each filter under test as it starts: its build, and the cases' configuration for it, else
/// its inline one in the Envoy configuration.
fn starting_filters(
    spec: &SessionSpec,
    inline: &BTreeMap<String, String>,
) -> BTreeMap<String, Placed> {
    spec.filters
        .iter()
        .map(|(name, build)| {
            let config = spec.configs.get(name).or_else(|| inline.get(name)).cloned();
            let placed = Placed {
                build: build.clone(),
                config,
            };
            (name.clone(), placed)
        })
        .collect()
}

/// The name a build takes in the watched folder: `<name>.wasm` or `lib<name>.so`.
fn build_file(name: &str, build: &Path) -> Result<String, String> {
    match build.extension().and_then(|e| e.to_str()) {
        Some("wasm") => Ok(format!("{name}.wasm")),
        Some("so") => Ok(format!("lib{name}.so")),
        _ => Err(format!("{}: a build is a .wasm or a .so", build.display())),
    }
}

/// Writes `bytes` into the watched folder as `to`, renamed into place.
fn write_in(to: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = to.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = to.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, to).map_err(|e| format!("renaming into {}: {e}", to.display()))
}

fn listeners_of(body: &Json) -> Vec<(String, SocketAddr)> {
    body["listener_statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let socket = &l["local_address"]["socket_address"];
            let ip = socket["address"].as_str()?.parse().ok()?;
            let port = u16::try_from(socket["port_value"].as_u64()?).ok()?;
            Some((l["name"].as_str()?.to_string(), SocketAddr::new(ip, port)))
        })
        .collect()
}

async fn start_control_plane(
    spec: &SessionSpec,
) -> Result<(tokio::sync::oneshot::Sender<()>, BoundAddrs), Error> {
    let ready = spec.dir.join("control-plane.ready.json");
    let _ = std::fs::remove_file(&ready);
    let config = crate::serve::ServeConfig {
        artifacts_dir: spec.dir.join("artifacts"),
        data_dir: spec.dir.join("data"),
        xds_addr: ([127, 0, 0, 1], 0).into(),
        admin_addr: ([127, 0, 0, 1], 0).into(),
        artifacts: None,
        ready_file: Some(ready.clone()),
        limits: crate::check::Limits::default(),
        quiet: crate::debounce::Quiet::default(),
        preflight: Some(meshplug_preflight::Limits::default()),
        envoy: Some(spec.envoy.clone()),
        rollout_policy: crate::rollout::Policy::immediate(),
        alert_webhook: None,
        admin_token: None,
        prefer_kind: crate::artifact::ArtifactKind::Wasm,
        mode: crate::mode::Mode::Folder,
        guards: crate::serve::Guards::default(),
        trusted_keys: Vec::new(),
        tls: None,
        insecure_admin: false,
        replicas: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::serve::run(config, async move {
        let _ = stopped.await;
    }));
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(addrs) = serde_json::from_str::<BoundAddrs>(&text)
        {
            return Ok((stop, addrs));
        }
        if task.is_finished() {
            let outcome = task.await.map_err(setup)?;
            return Err(setup(format!("the control plane stopped: {outcome:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(setup("the control plane did not start within 30 s"))
}

/// Envoy's own `--mode validate` of the rendered configuration; its message when it refuses.
fn validate(envoy: &Path, rendered: &Path) -> Result<(), Error> {
    let output = Command::new(envoy)
        .args([
            "--mode",
            "validate",
            "-l",
            "error",
            "--disable-hot-restart",
            "-c",
        ])
        .arg(rendered)
        .output()
        .map_err(|e| setup(format!("running {} --mode validate: {e}", envoy.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = if said.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        said.into_owned()
    };
    Err(setup(format!(
        "Envoy refuses the configuration as rendered ({}): {}",
        rendered.display(),
        said.trim()
    )))
}

fn start_envoy(envoy: &Path, rendered: &Path, log: &Path, dir: &Path) -> Result<Child, Error> {
    let base_id = 20_000 + std::process::id() % 20_000;
    Command::new(envoy)
        .arg("-c")
        .arg(rendered)
        // One worker: a case's requests share a filter's per-worker state (a Wasm VM's) even
        // when the client opens a new connection between them, which a kept-alive client
        // still may (its connection goes back to the pool a moment after a response ends).
        .args(["--concurrency", "1", "--disable-hot-restart", "-l", "info"])
        // The log is flushed often, so a case's `log` expectation is checked promptly.
        .args(["--file-flush-interval-msec", "50"])
        .arg("--base-id")
        .arg(base_id.to_string())
        .arg("--admin-address-path")
        .arg(dir.join("envoy.admin"))
        .arg("--log-path")
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| setup(format!("starting {}: {e}", envoy.display())))
}

async fn wait_admin_address(dir: &Path) -> Result<String, Error> {
    let path = dir.join("envoy.admin");
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&path)
            && !text.trim().is_empty()
        {
            return Ok(text.trim().to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(setup(format!(
        "Envoy wrote no admin address to {}",
        path.display()
    )))
}
