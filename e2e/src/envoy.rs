//! A real Envoy process, bootstrapped from an `envoy-config/` template on ephemeral ports.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use meshplug::bootstrap::{BootstrapVars, render};

use crate::HarnessError;
use crate::paths::envoy_binary;
use crate::process::ChildGuard;

/// How to start one Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// `node.id`.
    pub node_id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// The template, e.g. `envoy-config/bootstrap.yaml`.
    pub template: PathBuf,
    /// Placeholder values besides the node identity. `ADMIN_PORT` and `LISTENER_PORT` default
    /// to 0 (any free port).
    pub vars: BootstrapVars,
    /// Envoy's `--concurrency`: worker threads, each with its own Wasm VM
    /// ([`DEFAULT_WORKERS`] unless a test needs one VM).
    pub workers: u32,
    /// Run it on a test-bed host (its own network and mount namespaces) instead of here.
    pub on_host: Option<OnHost>,
}

/// Where an Envoy runs in the multi-host test bed.
#[derive(Debug, Clone)]
pub struct OnHost {
    /// The host.
    pub host: crate::hosts::Host,
    /// Folders it must not see (the control plane's data).
    pub hidden: Vec<PathBuf>,
}

/// The worker threads the harness's Envoys run unless told otherwise.
pub const DEFAULT_WORKERS: u32 = 2;

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    process: ChildGuard,
    /// Admin address.
    pub admin: SocketAddr,
    /// The HTTP listener's address.
    pub listener: SocketAddr,
    /// Its log file.
    pub log_path: PathBuf,
    http: reqwest::Client,
}

/// A `--base-id` no other Envoy of this machine's test runs uses: derived from our PID and a
/// counter.
fn unique_base_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    (std::process::id() % 400_000) * 1000 + n
}

impl Envoy {
    /// Renders the bootstrap into `workdir` and starts Envoy; returns once its listener is up.
    pub async fn start(workdir: &Path, options: EnvoyOptions) -> Result<Self, HarnessError> {
        let template = std::fs::read_to_string(&options.template).map_err(HarnessError::io(
            format!("reading {}", options.template.display()),
        ))?;
        let mut vars = options.vars.clone();
        vars.insert("NODE_ID", options.node_id.clone());
        vars.insert("NODE_CLUSTER", options.cluster.clone());
        vars.entry("ADMIN_PORT").or_insert_with(|| "0".into());
        vars.entry("LISTENER_PORT").or_insert_with(|| "0".into());
        if let Some(xds) = vars.get("XDS_PORT").cloned() {
            vars.entry("METRICS_PORT").or_insert(xds);
        }
        let id = &options.node_id;
        let bootstrap = workdir.join(format!("{id}.bootstrap.yaml"));
        std::fs::write(
            &bootstrap,
            render(&template, &vars).map_err(meshplug::Error::from)?,
        )
        .map_err(HarnessError::io("writing bootstrap"))?;
        let admin_file = workdir.join(format!("{id}.admin-address"));
        let _ = std::fs::remove_file(&admin_file);
        let log_path = workdir.join(format!("{id}.envoy.log"));
        let log = File::create(&log_path).map_err(HarnessError::io("creating envoy log"))?;
        let log_err = log.try_clone().map_err(HarnessError::io("cloning log"))?;
        let mut command = match &options.on_host {
            Some(on) => {
                let hidden: Vec<&Path> = on.hidden.iter().map(PathBuf::as_path).collect();
                on.host.command(&envoy_binary()?, &hidden)
            }
            None => Command::new(envoy_binary()?),
        };
        command
            .arg("-c")
            .arg(&bootstrap)
            .args(["--base-id", &unique_base_id().to_string()])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(["--concurrency", &options.workers.to_string()])
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut process = ChildGuard::spawn("envoy", &mut command)?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let admin = wait_for_admin(&mut process, &admin_file, &log_path).await?;
        let listener = wait_for_listener(&mut process, &http, admin, &log_path).await?;
        wait_until_live(&mut process, &http, admin, &log_path).await?;
        Ok(Self {
            process,
            admin,
            listener,
            log_path,
            http,
        })
    }

    /// A URL on the HTTP listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener)
    }

    /// Counters and gauges from the admin `/stats` page.
    pub async fn stats(&self) -> Result<BTreeMap<String, String>, HarnessError> {
        let url = format!("http://{}/stats", self.admin);
        let text = self.http.get(url).send().await?.text().await?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
            .collect())
    }

    /// One numeric stat (0 when absent).
    pub async fn stat(&self, name: &str) -> Result<u64, HarnessError> {
        let stats = self.stats().await?;
        Ok(stats.get(name).and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The sum of the numeric stats whose names end with `suffix`, e.g. a filter's own counter,
    /// which Envoy prefixes by runtime (`wasmcustom.`, `dynamicmodulescustom.`).
    pub async fn stat_sum(&self, suffix: &str) -> Result<u64, HarnessError> {
        let stats = self.stats().await?;
        Ok(stats
            .iter()
            .filter(|(name, _)| name.ends_with(suffix))
            .filter_map(|(_, value)| value.parse::<u64>().ok())
            .sum())
    }

    /// The process.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

async fn wait_for_admin(
    process: &mut ChildGuard,
    admin_file: &Path,
    log: &Path,
) -> Result<SocketAddr, HarnessError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let written = std::fs::read_to_string(admin_file).unwrap_or_default();
        if let Ok(addr) = written.trim().parse() {
            return Ok(addr);
        }
        fail_if_gone(process, deadline, log, "Envoy admin")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_listener(
    process: &mut ChildGuard,
    http: &reqwest::Client,
    admin: SocketAddr,
    log: &Path,
) -> Result<SocketAddr, HarnessError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let url = format!("http://{admin}/listeners?format=json");
    loop {
        if let Ok(response) = http.get(&url).send().await {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let socket = &body["listener_statuses"][0]["local_address"]["socket_address"];
            if let Some(port) = socket["port_value"].as_u64().filter(|p| *p != 0) {
                // Bound where the bootstrap said: loopback, or a test-bed host's address.
                let ip = socket["address"]
                    .as_str()
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
                return Ok(SocketAddr::from((ip, port as u16)));
            }
        }
        fail_if_gone(process, deadline, log, "Envoy listener")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until Envoy's initialisation is done (`/ready` answers 200, state LIVE): its
/// listeners are bound before, but accept connections only from then on (after the first
/// CDS answer, for a bootstrap that takes clusters from ADS).
async fn wait_until_live(
    process: &mut ChildGuard,
    http: &reqwest::Client,
    admin: SocketAddr,
    log: &Path,
) -> Result<(), HarnessError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let url = format!("http://{admin}/ready");
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        fail_if_gone(process, deadline, log, "Envoy initialisation (LIVE)")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fail_if_gone(
    process: &mut ChildGuard,
    deadline: tokio::time::Instant,
    log: &Path,
    what: &str,
) -> Result<(), HarnessError> {
    if process.is_running() && tokio::time::Instant::now() < deadline {
        return Ok(());
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = tail.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    Err(HarnessError::NotReady(format!(
        "{what} never came up; log tail (newest first):\n{tail}"
    )))
}
