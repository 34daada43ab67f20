//! Test an Envoy filter build against your own `envoy.yaml` and a real Envoy 1.40, from
//! `cargo test`: the engine of `meshplug test`, as a library.
//!
//! ```no_run
//! # async fn example() -> Result<(), meshplug_testkit::Error> {
//! use meshplug_testkit::{Envoy, Request};
//!
//! let envoy = Envoy::from_config("envoy.yaml")
//!     .with_filter("authz", "target/filters/authz.wasm")
//!     .with_config("authz", r#"{"api_keys": ["k1"]}"#)
//!     .start()
//!     .await?;
//! let answer = envoy.request(None, &Request::get("/").header("x-api-key", "k1")).await?;
//! assert_eq!(answer.status, 200);
//! # Ok(()) }
//! ```
//!
//! [`Envoy::start`] renders the configuration (each named HTTP filter becomes an ECDS slot
//! served by an in-process meshplug control plane; listeners and admin move to loopback ports;
//! faked clusters point at in-process upstreams), checks it with Envoy's `--mode validate`,
//! starts Envoy and waits until it runs every filter. [`Running::swap`] changes a filter and
//! waits until Envoy runs the change; [`Running::run_cases`] runs a `meshplug test` cases file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use meshplug::testkit::{CaseResult, read_cases};
pub use meshplug_preflight::{CasesFile, FixtureRequest as Request, Outcome, UpstreamResponse};

use meshplug::testkit::{Session, SessionSpec};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session could not start (configuration, Envoy, control plane).
    #[error(transparent)]
    Setup(#[from] meshplug::Error),
    /// A request, swap or file failed: why.
    #[error("{0}")]
    Failed(String),
}

/// An Envoy to start from a configuration of yours.
#[derive(Debug, Clone)]
pub struct Envoy {
    config: PathBuf,
    filters: BTreeMap<String, PathBuf>,
    configs: BTreeMap<String, String>,
    upstreams: BTreeMap<String, UpstreamResponse>,
    binary: Option<PathBuf>,
}

impl Envoy {
    /// From your Envoy configuration file (static listeners and clusters).
    pub fn from_config(path: impl Into<PathBuf>) -> Self {
        Self {
            config: path.into(),
            filters: BTreeMap::new(),
            configs: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            binary: None,
        }
    }

    /// The HTTP filter `name` of the configuration runs `build` (`.wasm` or `.so`).
    pub fn with_filter(mut self, name: &str, build: impl Into<PathBuf>) -> Self {
        self.filters.insert(name.to_string(), build.into());
        self
    }

    /// Filter `name` starts with this configuration (text) instead of its inline one.
    pub fn with_config(mut self, name: &str, config: &str) -> Self {
        self.configs.insert(name.to_string(), config.to_string());
        self
    }

    /// Cluster `name` is answered by an in-process fake with `answer`.
    pub fn with_upstream(mut self, name: &str, answer: UpstreamResponse) -> Self {
        self.upstreams.insert(name.to_string(), answer);
        self
    }

    /// The Envoy binary (default: `$MESHPLUG_ENVOY`, then `envoy` on PATH).
    pub fn with_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Starts it; returns once Envoy runs every filter.
    pub async fn start(self) -> Result<Running, Error> {
        let envoy_config = meshplug::testkit::read_envoy_config(&self.config)?;
        let dir = tempfile::Builder::new()
            .prefix("meshplug-testkit-")
            .tempdir()
            .map_err(|e| Error::Failed(format!("a work folder: {e}")))?;
        let envoy = self
            .binary
            .or_else(|| std::env::var_os("MESHPLUG_ENVOY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("envoy"));
        let spec = SessionSpec {
            envoy_config,
            filters: self.filters,
            upstreams: self.upstreams,
            configs: self.configs,
            envoy,
            dir: dir.path().to_path_buf(),
        };
        let session = Session::start(&spec).await?;
        Ok(Running { session, dir })
    }
}

/// A running Envoy; stopped (with its control plane and fakes) on drop.
#[derive(Debug)]
pub struct Running {
    session: Session,
    dir: tempfile::TempDir,
}

impl Running {
    /// Sends `request` to listener `listener` (default: the first).
    pub async fn request(
        &self,
        listener: Option<&str>,
        request: &Request,
    ) -> Result<Outcome, Error> {
        let addr = self.session.listener(listener).map_err(Error::Failed)?;
        self.session
            .send(addr, false, request)
            .await
            .map_err(Error::Failed)
    }

    /// Swaps filter `name` to `build` and/or `config`, and waits until Envoy runs it.
    pub async fn swap(
        &mut self,
        name: &str,
        build: Option<&Path>,
        config: Option<&str>,
    ) -> Result<(), Error> {
        self.session
            .swap(name, build, config.map(str::to_string))
            .await
            .map_err(Error::Failed)
    }

    /// Envoy's counters and gauges.
    pub async fn stats(&self) -> Result<BTreeMap<String, i64>, Error> {
        self.session.stats().await.map_err(Error::Failed)
    }

    /// Runs a cases file (paths in it relative to `base`).
    pub async fn run_cases(&mut self, cases: &CasesFile, base: &Path) -> Vec<CaseResult> {
        meshplug::testkit::run_cases(&mut self.session, cases, base).await
    }

    /// Where the rendered configuration and Envoy's log are.
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }
}
