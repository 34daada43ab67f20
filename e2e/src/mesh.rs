//! A whole mesh on loopback: upstream, control plane and one or more Envoys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meshplug::bootstrap::BootstrapVars;
use reqwest::header::HeaderMap;
use tempfile::TempDir;

use crate::control_plane::ControlPlane;
use crate::envoy::{Envoy, EnvoyOptions};
use crate::paths::bootstrap_template;
use crate::upstream::Upstream;
use crate::{HarnessError, eventually};

/// The API key the tests' `authz` configuration allows.
pub const TEST_API_KEY: &str = "test-key-1";

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
}

impl Answer {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The tests' `authz` configuration: allows [`TEST_API_KEY`].
pub fn authz_config() -> String {
    format!(r#"{{"api_keys": ["{TEST_API_KEY}"]}}"#)
}

/// Upstream, control plane and Envoys, all stopped on drop.
#[derive(Debug)]
pub struct Mesh {
    /// The Envoys, in start order. Dropped first.
    pub envoys: Vec<Envoy>,
    /// With [`Mesh::start_hosts`]: the hosts and their agents (dropped after the Envoys).
    pub bed: Option<crate::multihost::HostBed>,
    /// The control plane.
    pub control_plane: ControlPlane,
    /// The upstream.
    pub upstream: Upstream,
    pub(crate) http: reqwest::Client,
    /// Worker threads of the Envoys started from now on (default
    /// [`crate::envoy::DEFAULT_WORKERS`]).
    pub envoy_workers: u32,
    pub(crate) dir: TempDir,
}

/// A fresh work folder, kept after the test with `MESHPLUG_E2E_KEEP=1`.
pub(crate) fn work_dir() -> Result<TempDir, HarnessError> {
    let mut dir = tempfile::Builder::new()
        .prefix("meshplug-e2e-")
        .tempdir()
        .map_err(HarnessError::io("creating work dir"))?;
    if std::env::var_os("MESHPLUG_E2E_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    Ok(dir)
}

impl Mesh {
    /// Starts upstream, control plane and one Envoy (`envoy-1`).
    pub async fn start() -> Result<Self, HarnessError> {
        let mut mesh = Self::start_without_envoy().await?;
        mesh.add_envoy("envoy-1", "edge").await?;
        Ok(mesh)
    }

    /// Starts upstream, a control plane run with `control_plane_args`, and one Envoy.
    pub async fn start_with(control_plane_args: &[&str]) -> Result<Self, HarnessError> {
        let mut mesh = Self::start_control_plane(control_plane_args).await?;
        mesh.add_envoy("envoy-1", "edge").await?;
        Ok(mesh)
    }

    /// Starts upstream and control plane only.
    pub async fn start_without_envoy() -> Result<Self, HarnessError> {
        Self::start_control_plane(&[]).await
    }

    /// Starts upstream and a control plane run with `control_plane_args`. Unless the arguments
    /// choose a rollout policy, the control plane runs `--rollout-policy immediate`: every
    /// proxy gets a new version at once, as the swap tests expect. Rollout tests pass theirs.
    pub async fn start_control_plane(control_plane_args: &[&str]) -> Result<Self, HarnessError> {
        Self::start_control_plane_in(control_plane_args, &[]).await
    }

    /// As [`Mesh::start_control_plane`]; each of `folders` (`plugins`, `mesh`) adds
    /// `--<folder> <dir>/<folder>`.
    pub(crate) async fn start_control_plane_in(
        control_plane_args: &[&str],
        folders: &[&str],
    ) -> Result<Self, HarnessError> {
        let mut args: Vec<String> = control_plane_args.iter().map(|a| a.to_string()).collect();
        if !args.iter().any(|a| a == "--rollout-policy") {
            args.extend(["--rollout-policy".into(), "immediate".into()]);
        }
        let dir = work_dir()?;
        let upstream = Upstream::start().await?;
        let artifacts = dir.path().join("artifacts");
        for folder in folders {
            let path = dir.path().join(folder);
            args.extend([format!("--{folder}"), path.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let control_plane = ControlPlane::start_watching(dir.path(), &artifacts, &args).await?;
        Ok(Self {
            envoys: Vec::new(),
            bed: None,
            control_plane,
            upstream,
            http: reqwest::Client::builder().no_proxy().build()?,
            envoy_workers: crate::envoy::DEFAULT_WORKERS,
            dir,
        })
    }

    /// Starts another Envoy from `envoy-config/bootstrap.yaml`.
    pub async fn add_envoy(
        &mut self,
        node_id: &str,
        cluster: &str,
    ) -> Result<&Envoy, HarnessError> {
        self.add_envoy_with(node_id, cluster, BootstrapVars::new())
            .await
    }

    /// Starts another Envoy with extra bootstrap placeholders (e.g. `METRICS_PORT`).
    pub async fn add_envoy_with(
        &mut self,
        node_id: &str,
        cluster: &str,
        extra: BootstrapVars,
    ) -> Result<&Envoy, HarnessError> {
        let mut vars = extra;
        vars.insert("XDS_PORT", self.control_plane.addrs.xds.port().to_string());
        vars.insert("UPSTREAM_PORT", self.upstream.addr.port().to_string());
        let options = EnvoyOptions {
            node_id: node_id.into(),
            cluster: cluster.into(),
            template: bootstrap_template("bootstrap.yaml"),
            vars,
            workers: self.envoy_workers,
            on_host: None,
        };
        let envoy = Envoy::start(self.dir.path(), options).await?;
        self.envoys.push(envoy);
        Ok(&self.envoys[self.envoys.len() - 1])
    }

    /// The work folder (logs, bootstraps, artifacts, store).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The watched artifacts folder.
    pub fn artifacts(&self) -> &Path {
        &self.control_plane.artifacts
    }

    /// Publishes `bytes` as `<file>` in the artifacts folder the way builds do: written to a
    /// hidden temp name, then renamed in.
    pub fn publish(&self, file: &str, bytes: &[u8]) -> Result<PathBuf, HarnessError> {
        let tmp = self.artifacts().join(format!(".{file}.tmp"));
        let target = self.artifacts().join(file);
        std::fs::write(&tmp, bytes).map_err(HarnessError::io("writing artifact"))?;
        std::fs::rename(&tmp, &target).map_err(HarnessError::io("renaming artifact"))?;
        Ok(target)
    }

    /// Publishes a copy of the file at `source` as `<file>`.
    pub fn publish_copy(&self, source: &Path, file: &str) -> Result<PathBuf, HarnessError> {
        let bytes = std::fs::read(source).map_err(HarnessError::io("reading artifact"))?;
        self.publish(file, &bytes)
    }

    /// Publishes the tests' `authz` configuration ([`authz_config`]).
    pub fn publish_authz_config(&self) -> Result<(), HarnessError> {
        self.publish("authz.json", authz_config().as_bytes())
            .map(|_| ())
    }

    /// Publishes `json` as `<name>.json` and waits (up to 20 s) until the control plane holds it,
    /// so that an artifact published next is checked and served with it.
    pub async fn publish_config(&self, name: &str, json: &str) -> Result<(), HarnessError> {
        serde_json::from_str::<serde_json::Value>(json)?;
        self.publish(&format!("{name}.json"), json.as_bytes())?;
        let what = format!("{name}'s configuration to be stored");
        self.wait_for_plugin(name, &what, Duration::from_secs(20), |plugin| {
            // Held, and handed to the filter, byte for byte.
            if plugin["config_json"] == json {
                Ok(())
            } else {
                Err(format!("{plugin}"))
            }
        })
        .await;
        Ok(())
    }

    /// Waits (up to 30 s) until the control plane records a refusal of the artifact with
    /// `sha256` for filter `name`; returns the reason.
    pub async fn wait_for_rejection(&self, name: &str, sha256: &str, what: &str) -> String {
        let what = format!("{what} to be refused");
        self.wait_for_plugin(name, &what, Duration::from_secs(30), |plugin| {
            let rejection = &plugin["last_rejection"];
            match rejection["reason"].as_str() {
                Some(reason) if rejection["sha256"] == sha256 => Ok(reason.to_string()),
                _ => Err(format!("not yet: {rejection}")),
            }
        })
        .await
    }

    /// Waits up to `timeout` until `check` accepts filter `name` as `/api/v1/plugins` shows
    /// it; returns what `check` returned.
    pub async fn wait_for_plugin<T>(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> T {
        eventually(timeout, what, || async {
            let plugin = self
                .control_plane
                .plugin(name)
                .await
                .map_err(|e| e.to_string())?;
            check(&plugin)
        })
        .await
    }

    /// Waits up to `timeout` until `check` accepts filter `name` on node `node_id` as
    /// `/api/v1/nodes` shows it; returns what `check` returned.
    pub async fn wait_for_filter<T>(
        &self,
        (node_id, name): (&str, &str),
        what: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> T {
        eventually(timeout, what, || async {
            let status = self
                .control_plane
                .filter_on_node(node_id, name)
                .await
                .map_err(|e| e.to_string())?;
            check(&status)
        })
        .await
    }

    /// Waits (up to 30 s) until node `node_id` has ACKed a version of filter `name` built from
    /// the artifact with `sha256`.
    pub async fn wait_until_acked(&self, node_id: &str, name: &str, sha256: &str) {
        let what = format!("{node_id} to ACK {name} {}", &sha256[..12]);
        self.wait_for_filter(
            (node_id, name),
            &what,
            Duration::from_secs(30),
            |status| match status["acked"].as_str() {
                Some(version) if version.starts_with(sha256) => Ok(()),
                _ => Err(format!("{status}")),
            },
        )
        .await;
    }

    /// Waits (up to 20 s) until node `node_id`'s agent reports it cannot fetch the version of
    /// filter `name` the node should run; returns the filter's status and the reason.
    pub async fn wait_for_fetch_failure(
        &self,
        node_id: &str,
        name: &str,
    ) -> (serde_json::Value, String) {
        let what = format!("{node_id}'s fetch failure of {name}");
        self.wait_for_filter((node_id, name), &what, Duration::from_secs(20), |status| {
            let failure = &status["last_fetch_failure"];
            match failure["error"].as_str() {
                Some(error) if status["desired"] == failure["version"] => {
                    Ok((status.clone(), error.to_string()))
                }
                _ => Err(format!("{status}")),
            }
        })
        .await
    }

    /// GET `path` through Envoy number `envoy` with `headers`.
    pub async fn get(
        &self,
        envoy: usize,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, HarnessError> {
        let mut request = self.http.get(self.envoys[envoy].url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await?,
        })
    }

    /// GET `/` through Envoy number `envoy` with the allowed API key; returns the
    /// `x-meshplug-filter` header (or `-` when absent) and the status.
    pub async fn served_by(&self, envoy: usize) -> Result<(String, u16), HarnessError> {
        let answer = self.get(envoy, "/", &[("x-api-key", TEST_API_KEY)]).await?;
        let tag = answer
            .header("x-meshplug-filter")
            .unwrap_or("-")
            .to_string();
        Ok((tag, answer.status))
    }

    /// Waits (up to 20 s) until Envoy number `envoy` answers an allowed request with 200 from
    /// the filter build tagged `tag`, e.g. `authz/a`.
    pub async fn wait_until_served_by(&self, envoy: usize, tag: &str) {
        eventually(
            Duration::from_secs(20),
            &format!("{tag} to serve"),
            || async {
                match self.served_by(envoy).await {
                    Ok((served, 200)) if served == tag => Ok(()),
                    Ok(other) => Err(format!("served by {other:?}")),
                    Err(err) => Err(err.to_string()),
                }
            },
        )
        .await;
    }
}
