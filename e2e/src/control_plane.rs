//! The `meshplug serve` process, on ephemeral ports, with JSON logs in a file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use meshplug::serve::BoundAddrs;
use serde_json::Value;

use crate::HarnessError;
use crate::paths::meshplug_binary;
use crate::process::ChildGuard;

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    process: ChildGuard,
    /// Its bound addresses.
    pub addrs: BoundAddrs,
    /// The watched artifacts folder.
    pub artifacts: PathBuf,
    /// Its log (JSON lines).
    pub log_path: PathBuf,
    http: reqwest::Client,
    /// `http` or, after [`ControlPlane::trust`], `https`.
    scheme: &'static str,
    workdir: PathBuf,
    extra_args: Vec<String>,
}

impl ControlPlane {
    /// Starts `meshplug serve` with its folders under `workdir`.
    pub async fn start(workdir: &Path) -> Result<Self, HarnessError> {
        Self::start_watching(workdir, &workdir.join("artifacts"), &[]).await
    }

    /// Starts `meshplug serve` watching `artifacts`, with store, logs and state under `workdir`,
    /// and `extra_args` appended to its command line.
    pub async fn start_watching(
        workdir: &Path,
        artifacts: &Path,
        extra_args: &[&str],
    ) -> Result<Self, HarnessError> {
        let any = "127.0.0.1:0"
            .parse()
            .map_err(|_| HarnessError::NotReady("address".into()))?;
        Self::start_serving_xds_on(workdir, artifacts, extra_args, any).await
    }

    /// As [`ControlPlane::start_watching`], with the admin API on `admin` (xDS on any port).
    pub async fn start_with_admin_on(
        workdir: &Path,
        artifacts: &Path,
        extra_args: &[&str],
        admin: std::net::SocketAddr,
    ) -> Result<Self, HarnessError> {
        let addrs = BoundAddrs {
            xds: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            admin,
            artifacts: None,
        };
        Self::start_on(workdir, artifacts, extra_args, addrs).await
    }

    /// As [`ControlPlane::start_watching`], serving xDS on `xds` (the admin API stays on
    /// loopback).
    pub async fn start_serving_xds_on(
        workdir: &Path,
        artifacts: &Path,
        extra_args: &[&str],
        xds: std::net::SocketAddr,
    ) -> Result<Self, HarnessError> {
        let addrs = BoundAddrs {
            xds,
            admin: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            artifacts: None,
        };
        Self::start_on(workdir, artifacts, extra_args, addrs).await
    }

    /// Spawns `meshplug serve` binding `addrs` (port 0: any).
    async fn start_on(
        workdir: &Path,
        artifacts: &Path,
        extra_args: &[&str],
        addrs: BoundAddrs,
    ) -> Result<Self, HarnessError> {
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let (process, addrs) = spawn(workdir, artifacts, &extra_args, addrs).await?;
        Ok(Self {
            process,
            addrs,
            artifacts: artifacts.to_path_buf(),
            log_path: workdir.join("control-plane.log"),
            http: reqwest::Client::builder().no_proxy().build()?,
            scheme: "http",
            workdir: workdir.to_path_buf(),
            extra_args,
        })
    }

    /// SIGKILLs the control plane (no graceful shutdown), then starts it again on the same
    /// ports, folders and arguments.
    pub async fn kill_and_restart(&mut self) -> Result<(), HarnessError> {
        self.process.kill();
        let (process, addrs) =
            spawn(&self.workdir, &self.artifacts, &self.extra_args, self.addrs).await?;
        self.process = process;
        self.addrs = addrs;
        Ok(())
    }

    /// SIGKILLs the control plane, leaves it down for `down`, then starts it again on the same
    /// ports, folders and arguments (a crash followed by a slow restart).
    pub async fn kill_and_restart_after(&mut self, down: Duration) -> Result<(), HarnessError> {
        self.process.kill();
        tokio::time::sleep(down).await;
        self.kill_and_restart().await
    }

    /// POST to an admin API path with a JSON body; the answer's status and JSON.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<(u16, Value), HarnessError> {
        let url = self.admin_url(path);
        let mut request = self.http.post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Talks to its admin API over TLS from now on (it was started with `--tls-cert`),
    /// trusting `tls.ca` and presenting `tls.identity` when given.
    pub fn trust(&mut self, tls: &meshplug::tls::ClientTls) -> Result<(), HarnessError> {
        let builder = reqwest::Client::builder().no_proxy();
        self.http = tls.reqwest(builder).map_err(HarnessError::from)?.build()?;
        self.scheme = "https";
        Ok(())
    }

    /// The URL of an admin API path.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addrs.admin)
    }

    /// `meshplug <args> --admin <its admin API>` (with its admin token, when it has one): the
    /// standard output; a failure panics with the standard error.
    pub fn cli(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = run_cli(&self.admin_url(""), args, self.admin_token());
        assert!(ok, "meshplug {args:?}: {stderr}");
        stdout
    }

    /// The admin token it was started with (`--admin-token`), which every read needs too.
    pub fn admin_token(&self) -> Option<&str> {
        let at = self.extra_args.iter().position(|a| a == "--admin-token")?;
        self.extra_args.get(at + 1).map(String::as_str)
    }

    /// GET an admin API path as JSON (with the admin token, when one is set).
    pub async fn api(&self, path: &str) -> Result<Value, HarnessError> {
        let url = self.admin_url(path);
        let mut request = self.http.get(url);
        if let Some(token) = self.admin_token() {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?.error_for_status()?.json().await?)
    }

    /// The value of the Prometheus sample `series` (name and labels as exposed, e.g.
    /// `meshplug_limit_refusals_total{limit="node_identity"}`) on `/metrics`; 0 when absent.
    pub async fn metric(&self, series: &str) -> Result<f64, HarnessError> {
        let mut request = self.http.get(self.admin_url("/metrics"));
        if let Some(token) = self.admin_token() {
            request = request.bearer_auth(token);
        }
        let text = request.send().await?.error_for_status()?.text().await?;
        Ok(text
            .lines()
            .filter_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .next()
            .unwrap_or(0.0))
    }

    /// The status of filter `name` on node `node_id`, from `/api/v1/nodes`.
    pub async fn filter_on_node(&self, node_id: &str, name: &str) -> Result<Value, HarnessError> {
        let nodes = self.api("/api/v1/nodes").await?;
        let found = nodes["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|node| node["id"] == node_id)
            .map(|node| node["filters"][name].clone())
            .unwrap_or(Value::Null);
        Ok(found)
    }

    /// The status of filter `name` from `/api/v1/plugins`.
    pub async fn plugin(&self, name: &str) -> Result<Value, HarnessError> {
        let plugins = self.api("/api/v1/plugins").await?;
        let found = plugins["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|plugin| plugin["name"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        Ok(found)
    }

    /// The JSON log records so far whose message is `message`.
    pub fn log_records(&self, message: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|record| record["fields"]["message"] == message)
            .collect()
    }

    /// The process.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}

async fn spawn(
    workdir: &Path,
    artifacts: &Path,
    extra_args: &[String],
    addrs: BoundAddrs,
) -> Result<(ChildGuard, BoundAddrs), HarnessError> {
    let ready = workdir.join("control-plane.ready.json");
    let log_path = workdir.join("control-plane.log");
    let _ = std::fs::remove_file(&ready);
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(HarnessError::io("opening control plane log"))?;
    let log_err = log.try_clone().map_err(HarnessError::io("cloning log"))?;
    let mut command = Command::new(meshplug_binary()?);
    command
        .arg("serve")
        .arg("--artifacts")
        .arg(artifacts)
        .arg("--data")
        .arg(workdir.join("data"))
        .arg("--xds-addr")
        .arg(addrs.xds.to_string())
        .arg("--admin-addr")
        .arg(addrs.admin.to_string())
        .arg("--log-json")
        .arg("--ready-file")
        .arg(&ready)
        .args(extra_args)
        // The pinned Envoy validates built-in filters, as `make test` would give it.
        .env("MESHPLUG_ENVOY", crate::paths::envoy_binary()?)
        .env("RUST_LOG", "info,meshplug=debug")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let mut process = ChildGuard::spawn("meshplug", &mut command)?;
    let addrs =
        wait_for_ready_file(&mut process, &ready, &log_path, Duration::from_secs(30)).await?;
    Ok((process, addrs))
}

/// Waits up to `timeout` for `process` (`meshplug serve` or `meshplug agent`) to write its
/// ready file (written atomically); what it says.
pub(crate) async fn wait_for_ready_file<T: serde::de::DeserializeOwned>(
    process: &mut ChildGuard,
    ready: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<T, HarnessError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(bytes) = std::fs::read(ready) {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        if !process.is_running() || tokio::time::Instant::now() > deadline {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            return Err(HarnessError::NotReady(format!(
                "{} did not become ready; log:\n{tail}",
                process.name()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `meshplug <args> --admin <admin>` (with `--token` when given; never the token from
/// the environment): whether it succeeded, its standard output and its standard error.
pub fn run_cli(admin: &str, args: &[&str], token: Option<&str>) -> (bool, String, String) {
    let binary = meshplug_binary().unwrap_or_else(|e| panic!("meshplug built: {e}"));
    let mut command = Command::new(binary);
    command
        .args(args)
        .args(["--admin", admin])
        .env_remove("MESHPLUG_ADMIN_TOKEN");
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run meshplug: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
