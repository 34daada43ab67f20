//! Several `meshplug serve` replicas on a three-member etcd cluster (`--store etcd://…`), one
//! shared artifacts folder, real Envoys each connected to one replica, steady traffic, and a
//! recorder of what every replica said it sent and each proxy ACKed. The last replica reaches
//! etcd through relays the test can cut. Dropped in order: traffic, Envoys, replicas, etcd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use meshplug::bootstrap::BootstrapVars;
use serde_json::Value;
use tempfile::TempDir;

use crate::control_plane::ControlPlane;
use crate::envoy::{Envoy, EnvoyOptions};
use crate::etcd::EtcdCluster;
use crate::paths::bootstrap_template;
use crate::relay::Relay;
use crate::rollout::{PLUGIN, TEST_POLICY, sha256_of, variant_artifact};
use crate::traffic::Traffic;
use crate::upstream::Upstream;
use crate::{HarnessError, eventually};

mod composed;

/// The replicas' lease: a dead leader is replaced this long after its last keep-alive.
pub const LEASE: Duration = Duration::from_secs(2);

/// One change a replica reported: `node`'s `sent` or `acked` version of the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// When the recorder saw it, ms since the Unix epoch.
    pub at_ms: u64,
    /// The replica that reported it.
    pub replica: usize,
    /// The proxy.
    pub node: String,
    /// `sent` or `acked`.
    pub field: &'static str,
    /// The version label.
    pub version: String,
}

/// The test bed.
#[derive(Debug)]
pub struct ReplicaSet {
    /// Traffic through each Envoy, in Envoy order.
    pub traffic: Vec<Traffic>,
    /// The Envoys.
    pub envoys: Vec<Envoy>,
    /// The replicas, in start order (`r0`, `r1`, …).
    pub replicas: Vec<ControlPlane>,
    /// The last replica's way to each etcd member.
    pub relays: Vec<Relay>,
    /// etcd.
    pub etcd: EtcdCluster,
    /// What the recorder saw, in order.
    pub history: Arc<Mutex<Vec<Observed>>>,
    recorder: Option<tokio::task::JoinHandle<()>>,
    upstream: Upstream,
    artifacts: PathBuf,
    http: reqwest::Client,
    _policy: tempfile::NamedTempFile,
    /// Replica `i` reads manifests from `<dir>/r<i>/plugins` and `<dir>/r<i>/mesh` (each its
    /// own, as a checkout on each host), and serves the mesh.
    composed: bool,
    dir: TempDir,
}

impl ReplicaSet {
    /// Starts etcd, `n` replicas (the fast test rollout policy, pre-flight off) and one
    /// Envoy per replica (`envoy-<i>` on `r<i>`), each under steady traffic.
    pub async fn start(n: usize) -> Result<Self, HarnessError> {
        Self::start_with(n, TEST_POLICY, n).await
    }

    /// `n` replicas under rollout policy `policy_json`, and `envoys` Envoys (`envoy-<i>` on
    /// replica `i % n`).
    pub async fn start_with(
        n: usize,
        policy_json: &str,
        envoys: usize,
    ) -> Result<Self, HarnessError> {
        Self::start_in(n, policy_json, envoys, false).await
    }

    /// `n` replicas serving the mesh from the manifests in their `plugins` and `mesh` folders
    /// ([`ReplicaSet::write_manifest`]), no Envoy yet ([`ReplicaSet::add_mesh_envoy`]).
    pub async fn start_composed(n: usize, policy_json: &str) -> Result<Self, HarnessError> {
        Self::start_in(n, policy_json, 0, true).await
    }

    async fn start_in(
        n: usize,
        policy_json: &str,
        envoys: usize,
        composed: bool,
    ) -> Result<Self, HarnessError> {
        let dir = crate::mesh::work_dir()?;
        let etcd = EtcdCluster::start(3).await?;
        let mut relays = Vec::new();
        for member in etcd.endpoints() {
            let addr = member
                .parse()
                .map_err(|_| HarnessError::NotReady(format!("etcd address {member}")))?;
            relays.push(Relay::start(addr).await?);
        }
        let policy = tempfile::NamedTempFile::new().map_err(HarnessError::io("policy file"))?;
        std::fs::write(policy.path(), policy_json).map_err(HarnessError::io("policy file"))?;
        let artifacts = dir.path().join("artifacts");
        let upstream = Upstream::start().await?;
        let mut set = Self {
            traffic: Vec::new(),
            envoys: Vec::new(),
            replicas: Vec::new(),
            relays,
            etcd,
            history: Arc::default(),
            recorder: None,
            upstream,
            artifacts,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(1))
                .build()?,
            _policy: policy,
            composed,
            dir,
        };
        for i in 0..n {
            let replica = set.start_replica(i, i + 1 == n).await?;
            set.replicas.push(replica);
        }
        for i in 0..envoys {
            set.add_envoy(i % n).await?;
        }
        set.recorder = Some(tokio::spawn(record(
            set.admin_urls(),
            set.http.clone(),
            Arc::clone(&set.history),
        )));
        Ok(set)
    }

    async fn start_replica(
        &self,
        i: usize,
        behind_relays: bool,
    ) -> Result<ControlPlane, HarnessError> {
        let endpoints: Vec<String> = if behind_relays {
            self.relays.iter().map(|r| r.addr.to_string()).collect()
        } else {
            self.etcd.endpoints()
        };
        let store = format!("etcd://{}/meshplug-e2e", endpoints.join(","));
        let lease = LEASE.as_secs().to_string();
        let policy = self._policy.path().display().to_string();
        let id = format!("r{i}");
        let plugins = self
            .dir
            .path()
            .join(&id)
            .join("plugins")
            .display()
            .to_string();
        let mesh = self.dir.path().join(&id).join("mesh").display().to_string();
        let composed = ["--plugins", plugins.as_str(), "--mesh", mesh.as_str()];
        let mut args = vec![
            "--store",
            &store,
            "--replica-id",
            &id,
            "--lease-s",
            &lease,
            "--artifacts-addr",
            "127.0.0.1:0",
            "--rollout-policy",
            &policy,
            "--no-preflight",
        ];
        if self.composed {
            args.extend(composed);
        }
        let workdir = self.dir.path().join(&id);
        std::fs::create_dir_all(&workdir).map_err(HarnessError::io("replica folder"))?;
        ControlPlane::start_watching(&workdir, &self.artifacts, &args).await
    }

    async fn add_envoy(&mut self, replica: usize) -> Result<(), HarnessError> {
        let mut vars = BootstrapVars::new();
        let xds = self.replicas[replica].addrs.xds.port().to_string();
        vars.insert("XDS_PORT", xds);
        vars.insert("UPSTREAM_PORT", self.upstream.addr.port().to_string());
        let envoy = self.start_envoy("bootstrap.yaml", vars).await?;
        self.traffic
            .push(Traffic::start(envoy.url("/"), 2, Duration::from_millis(10)));
        self.envoys.push(envoy);
        Ok(())
    }

    async fn start_envoy(
        &self,
        template: &str,
        vars: BootstrapVars,
    ) -> Result<Envoy, HarnessError> {
        let options = EnvoyOptions {
            node_id: format!("envoy-{}", self.envoys.len()),
            cluster: "replicas".into(),
            template: bootstrap_template(template),
            vars,
            workers: crate::envoy::DEFAULT_WORKERS,
            on_host: None,
        };
        Envoy::start(self.dir.path(), options).await
    }

    fn admin_urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|r| format!("http://{}", r.addrs.admin))
            .collect()
    }

    /// GET `path` on replica `i` (1 s timeout: a stopped replica does not hold the test).
    pub async fn get(&self, i: usize, path: &str) -> Result<Value, HarnessError> {
        let url = format!("http://{}{path}", self.replicas[i].addrs.admin);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Waits until a replica other than `not` leads: of the replicas that say they lead and
    /// name themselves in their view, the one in the highest term (a leader paused or cut off
    /// may still believe it leads, in an older term); its index and term. A majority must name
    /// it, so a partitioned replica's belief alone is not taken.
    pub async fn leader(&self, not: Option<usize>) -> (usize, i64) {
        eventually(
            Duration::from_secs(10) + LEASE * 5,
            "a leader a majority names",
            || async {
                let mut views = Vec::new();
                for i in 0..self.replicas.len() {
                    if let Ok(view) = self.get(i, "/api/v1/replicas").await {
                        views.push((i, view));
                    }
                }
                let leading = views
                    .iter()
                    .filter(|(_, v)| v["role"] == "leader" && v["leader"]["id"] == v["me"])
                    .max_by_key(|(_, v)| v["leader"]["term"].as_i64().unwrap_or(0));
                let (index, view) = leading.ok_or("no replica says it leads")?;
                let term = view["leader"]["term"].as_i64().unwrap_or(0);
                if Some(*index) == not {
                    return Err(format!("r{index} still leads"));
                }
                let naming = views
                    .iter()
                    .filter(|(_, v)| v["leader"]["term"].as_i64() == Some(term))
                    .count();
                if naming * 2 <= self.replicas.len() {
                    return Err(format!(
                        "only {naming} replicas name r{index} (term {term})"
                    ));
                }
                Ok((*index, term))
            },
        )
        .await
    }

    /// Publishes `testbed-<variant>.wasm` as the filter (renamed into the shared folder); its
    /// sha256.
    pub fn publish(&self, variant: &str) -> Result<String, HarnessError> {
        let artifact = variant_artifact(variant)?;
        let sha = sha256_of(&artifact)?;
        let tmp = self.artifacts.join(format!(".{PLUGIN}.wasm.tmp"));
        std::fs::copy(&artifact, &tmp).map_err(HarnessError::io("copying artifact"))?;
        std::fs::rename(&tmp, self.artifacts.join(format!("{PLUGIN}.wasm")))
            .map_err(HarnessError::io("renaming artifact"))?;
        Ok(sha)
    }

    /// Writes `bytes` as `file` into the shared folder (renamed into place).
    pub fn publish_file(&self, file: &str, bytes: &[u8]) -> Result<(), HarnessError> {
        let tmp = self.artifacts.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, bytes).map_err(HarnessError::io("writing"))?;
        std::fs::rename(&tmp, self.artifacts.join(file)).map_err(HarnessError::io("renaming"))
    }

    /// The filter's rollout record, as the leader holds it.
    pub async fn record(&self) -> Value {
        let (leader, _) = self.leader(None).await;
        let list = self
            .get(leader, "/api/v1/rollouts")
            .await
            .unwrap_or_default();
        list["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == PLUGIN)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits until the leader's record satisfies `done`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(timeout, what, || async {
            let record = self.record().await;
            if done(&record) {
                Ok(record)
            } else {
                let recent = latest(record["recent_decisions"].as_array().into_iter().flatten());
                Err(format!(
                    "record: rollout {} paused {} last_good {}; latest decisions {recent:?}",
                    record["rollout"]["stage"],
                    record["rollout"]["paused"],
                    record["last_good"]["sha256"]
                ))
            }
        })
        .await
    }

    /// Waits until the leader's log holds a decision that satisfies `wanted` (the log holds
    /// only what was saved, unlike a paused leader's rollout record); returns it.
    pub async fn wait_decision(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(timeout, what, || async {
            let log = self.decisions().await;
            match log.iter().find(|d| wanted(d)) {
                Some(found) => Ok(found.clone()),
                None => {
                    let (leader, _) = self.leader(None).await;
                    let nodes = self.get(leader, "/api/v1/nodes").await.unwrap_or_default();
                    let fleet: Vec<String> = nodes["nodes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|n| {
                            let f = &n["filters"][PLUGIN];
                            format!(
                                "{}@{}: sent {} acked {}",
                                n["id"], n["replica"], f["sent"], f["acked"]
                            )
                        })
                        .collect();
                    let recent = latest(log.iter());
                    Err(format!(
                        "latest decisions {recent:?}; the leader's fleet {fleet:?}"
                    ))
                }
            }
        })
        .await
    }

    /// Every decision about the filter in the leader's log, oldest first.
    pub async fn decisions(&self) -> Vec<Value> {
        let (leader, _) = self.leader(None).await;
        let path = format!("/api/v1/rollouts/{PLUGIN}/decisions?since=0&limit=1000");
        let log = self.get(leader, &path).await.unwrap_or_default();
        log.as_array().cloned().unwrap_or_default()
    }

    /// Waits until every Envoy's replica says it ACKed `sha`.
    pub async fn wait_everywhere(&self, sha: &str, timeout: Duration) {
        eventually(timeout, "every Envoy to ACK the version", || async {
            for i in 0..self.envoys.len() {
                let nodes = self
                    .get(i, "/api/v1/nodes")
                    .await
                    .map_err(|e| e.to_string())?;
                let node = format!("envoy-{i}");
                let acked = nodes["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|n| n["id"] == node.as_str() && n["connected"] == true)
                    .and_then(|n| n["filters"][PLUGIN]["acked"].as_str().map(String::from))
                    .unwrap_or_default();
                if !acked.starts_with(sha) {
                    return Err(format!("{node} on r{i} ACKed {acked:?}"));
                }
            }
            Ok(())
        })
        .await;
    }

    /// SIGKILLs replica `i` and starts it again on its ports (a supervisor's restart).
    pub async fn kill_and_restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.replicas[i].kill_and_restart().await
    }

    /// Stops the recorder; what it saw.
    pub fn stop_recording(&mut self) -> Vec<Observed> {
        if let Some(task) = self.recorder.take() {
            task.abort();
        }
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The work folder.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        if let Some(task) = self.recorder.take() {
            task.abort();
        }
    }
}

/// The last three of `decisions`, newest first, a line each (for a timeout's message).
fn latest<'a>(decisions: impl DoubleEndedIterator<Item = &'a Value>) -> Vec<String> {
    decisions
        .rev()
        .take(3)
        .map(|d| {
            format!(
                "{} {} {}: {}",
                d["seq"], d["term"], d["action"], d["reason"]
            )
        })
        .collect()
}

/// Polls every replica's nodes every 100 ms and notes each change of a connected node's
/// `sent` and `acked` versions of the filter.
async fn record(admins: Vec<String>, http: reqwest::Client, history: Arc<Mutex<Vec<Observed>>>) {
    let mut last: BTreeMap<(usize, String, &'static str), String> = BTreeMap::new();
    loop {
        for (replica, admin) in admins.iter().enumerate() {
            let Ok(answer) = http.get(format!("{admin}/api/v1/nodes")).send().await else {
                continue;
            };
            let Ok(nodes) = answer.json::<Value>().await else {
                continue;
            };
            let at_ms = meshplug::ingest::unix_ms();
            // Only the nodes this replica holds: another's are its copies.
            let held = nodes["nodes"].as_array().into_iter().flatten();
            for node in held.filter(|n| n["replica"].is_null()) {
                let id = node["id"].as_str().unwrap_or("").to_string();
                for field in ["sent", "acked"] {
                    let Some(version) = node["filters"][PLUGIN][field].as_str() else {
                        continue;
                    };
                    let key = (replica, id.clone(), field);
                    if last.get(&key).map(String::as_str) != Some(version) {
                        last.insert(key, version.to_string());
                        let seen = Observed {
                            at_ms,
                            replica,
                            node: id.clone(),
                            field,
                            version: version.into(),
                        };
                        history
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(seen);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
