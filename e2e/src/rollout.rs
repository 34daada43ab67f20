//! Rollout scenarios: a control plane with a fast test policy and an alert webhook, two
//! Envoys (one becomes the canary, the other the baseline) under steady traffic, and the
//! `testbed` filter variants deployed as the `authz` filter.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use meshplug::bootstrap::BootstrapVars;
use serde_json::Value;

use crate::paths::filter_artifact;
use crate::relay::Relay;
use crate::traffic::Traffic;
use crate::webhook::Webhook;
use crate::{HarnessError, Mesh, eventually};

/// The filter slot the variants are deployed into.
pub const PLUGIN: &str = "authz";

/// A policy fast enough for tests: one proxy, then all, looks every second, two failing looks.
pub const TEST_POLICY: &str = r#"{
  "steps": [
    {"nodes": 1, "minDuration": "3s", "minRequests": 50},
    {"percent": 100, "minDuration": "2s", "minRequests": 50}
  ],
  "bake": "2s",
  "ackDeadline": "10s",
  "crashWindow": "30s",
  "lookInterval": "1s",
  "failingLooks": 2,
  "settle": "1500ms",
  "metricsStaleAfter": "4s",
  "historyWindow": "60s",
  "stepDeadline": "60s",
  "traffic": {"minSamples": 30}
}"#;

/// A rollout test bed. Dropped in order: traffic, Envoys, control plane.
#[derive(Debug)]
pub struct RolloutMesh {
    /// Per-Envoy traffic, in Envoy order.
    pub traffic: Vec<Traffic>,
    /// The mesh.
    pub mesh: Mesh,
    /// Receives alerts.
    pub webhook: Webhook,
    /// Stands between the Envoys and the MetricsService, when asked for.
    pub metrics_relay: Option<Relay>,
    _policy: tempfile::NamedTempFile,
}

/// sha256 of a file, hex.
pub fn sha256_of(path: &PathBuf) -> Result<String, HarnessError> {
    let bytes = std::fs::read(path).map_err(HarnessError::io("reading artifact"))?;
    Ok(meshplug::store::sha256_hex(&bytes))
}

/// The built variant `testbed-<variant>.wasm`.
pub fn variant_artifact(variant: &str) -> Result<PathBuf, HarnessError> {
    filter_artifact(&format!("test/testbed-{variant}.wasm"))
}

impl RolloutMesh {
    /// Starts the control plane (pre-flight off, so the rollout gates are what stands between
    /// a bad build and the fleet), two Envoys and their traffic. With `metrics_relay`, Envoys
    /// stream their stats through a relay the test can cut.
    pub async fn start(metrics_relay: bool) -> Result<Self, HarnessError> {
        Self::start_with_policy(TEST_POLICY, metrics_relay).await
    }

    /// [`RolloutMesh::start`] with another rollout policy (JSON).
    pub async fn start_with_policy(
        policy_json: &str,
        metrics_relay: bool,
    ) -> Result<Self, HarnessError> {
        Self::start_with_args(policy_json, metrics_relay, &[]).await
    }

    /// [`RolloutMesh::start_with_policy`] with more control-plane arguments.
    pub async fn start_with_args(
        policy_json: &str,
        metrics_relay: bool,
        extra_args: &[&str],
    ) -> Result<Self, HarnessError> {
        Self::start_in(policy_json, extra_args, |args| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut mesh = Mesh::start_control_plane(&args).await?;
            let relay = match metrics_relay {
                true => Some(Relay::start(mesh.control_plane.addrs.xds).await?),
                false => None,
            };
            for id in ["envoy-1", "envoy-2"] {
                let mut vars = BootstrapVars::new();
                if let Some(relay) = &relay {
                    vars.insert("METRICS_PORT", relay.addr.port().to_string());
                }
                mesh.add_envoy_with(id, "rollout", vars).await?;
            }
            Ok((mesh, relay))
        })
        .await
    }

    /// As [`RolloutMesh::start`], with each Envoy on its own test-bed host behind an agent
    /// ([`Mesh::start_hosts`]), `hosts` of them.
    pub async fn start_on_hosts(hosts: usize) -> Result<Self, HarnessError> {
        Self::start_in(TEST_POLICY, &[], |args| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok((Mesh::start_hosts(hosts, &args).await?, None))
        })
        .await
    }

    /// The webhook, the policy file and steady traffic around the mesh `start` makes from the
    /// control plane's arguments.
    async fn start_in<F, Fut>(
        policy_json: &str,
        extra_args: &[&str],
        start: F,
    ) -> Result<Self, HarnessError>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(Mesh, Option<Relay>), HarnessError>>,
    {
        let webhook = Webhook::start().await?;
        let policy = tempfile::NamedTempFile::new().map_err(HarnessError::io("policy file"))?;
        std::fs::write(policy.path(), policy_json).map_err(HarnessError::io("policy file"))?;
        let mut args: Vec<String> = vec![
            "--rollout-policy".into(),
            policy.path().display().to_string(),
            "--alert-webhook".into(),
            webhook.url(),
            "--no-preflight".into(),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let (mesh, relay) = start(args).await?;
        let traffic = mesh
            .envoys
            .iter()
            .map(|e| Traffic::start(e.url("/"), 2, Duration::from_millis(10)))
            .collect();
        Ok(Self {
            traffic,
            mesh,
            webhook,
            metrics_relay: relay,
            _policy: policy,
        })
    }

    /// Publishes `testbed-<variant>.wasm` as the filter; its sha256 and when it was published.
    pub fn publish(&self, variant: &str) -> Result<(String, Instant), HarnessError> {
        let artifact = variant_artifact(variant)?;
        let sha = sha256_of(&artifact)?;
        self.mesh
            .publish_copy(&artifact, &format!("{PLUGIN}.wasm"))?;
        Ok((sha, Instant::now()))
    }

    /// Deploys `variant` as the first version and waits until it is the last good one and
    /// both Envoys have served plenty of traffic with it (the history later steps compare with).
    pub async fn deploy_first(&self, variant: &str) -> Result<String, HarnessError> {
        let (sha, _) = self.publish(variant)?;
        self.wait_for(
            "the first version to become the last good",
            Duration::from_secs(30),
            |p| p["last_good"]["sha256"] == sha.as_str(),
        )
        .await;
        let tag = format!("variant/{variant}");
        eventually(
            Duration::from_secs(30),
            "traffic through both Envoys",
            || async {
                for (i, traffic) in self.traffic.iter().enumerate() {
                    let served = traffic
                        .tally()
                        .get(&(tag.clone(), 200))
                        .copied()
                        .unwrap_or(0);
                    if served < 200 {
                        return Err(format!("envoy {i}: {served} answers from {tag}"));
                    }
                }
                Ok(())
            },
        )
        .await;
        Ok(sha)
    }

    /// The filter's rollout record from `/api/v1/rollouts`.
    pub async fn plugin(&self) -> Result<Value, HarnessError> {
        let list = self.mesh.control_plane.api("/api/v1/rollouts").await?;
        Ok(list["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == PLUGIN)
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// The filter's decision log.
    pub async fn decisions(&self) -> Result<Vec<Value>, HarnessError> {
        let log = self
            .mesh
            .control_plane
            .api(&format!("/api/v1/rollouts/{PLUGIN}/decisions"))
            .await?;
        Ok(log.as_array().cloned().unwrap_or_default())
    }

    /// Waits until the rollout record satisfies `done`; returns it.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(timeout, what, || async {
            let plugin = self.plugin().await.map_err(|e| e.to_string())?;
            if done(&plugin) {
                Ok(plugin)
            } else {
                Err(format!("rollout state: {plugin}"))
            }
        })
        .await
    }

    /// Waits until `sha` rolls out to its first cohort; asserts it is one canary and returns
    /// the rollout record.
    pub async fn wait_for_one_canary(&self, sha: &str) -> Value {
        let record = self
            .wait_for("a canary", Duration::from_secs(20), |p| {
                p["rollout"]["to"]["sha256"] == sha
            })
            .await;
        assert_eq!(
            record["rollout"]["canary"].as_array().map(Vec::len),
            Some(1),
            "one canary first: {record}"
        );
        record
    }

    /// Waits until every Envoy ACKed a version of the filter starting with `sha` and answers
    /// with build `variant`.
    pub async fn wait_everywhere(&self, sha: &str, variant: &str, timeout: Duration) {
        let tag = format!("variant/{variant}");
        eventually(
            timeout,
            &format!("{tag} ({sha:.12}) on every Envoy"),
            || async {
                for i in 0..self.mesh.envoys.len() {
                    let node = format!("envoy-{}", i + 1);
                    let status = self
                        .mesh
                        .control_plane
                        .filter_on_node(&node, PLUGIN)
                        .await
                        .map_err(|e| e.to_string())?;
                    let acked = status["acked"].as_str().unwrap_or("");
                    let desired = status["desired"].as_str().unwrap_or("");
                    if !acked.starts_with(sha) || !desired.starts_with(sha) {
                        return Err(format!("{node} wants {desired}, ACKed {acked}"));
                    }
                    let (served, status) =
                        self.mesh.served_by(i).await.map_err(|e| e.to_string())?;
                    if served != tag || status != 200 {
                        return Err(format!("{node} answered {status} from {served}"));
                    }
                }
                Ok(())
            },
        )
        .await;
    }

    /// Publishes bad `variant` after good `good_sha`, and checks the four things a rollback
    /// must show: the last good version back on every Envoy, the bad sha quarantined, an alert
    /// at the webhook, and a decision-log entry naming `gate`. Returns the rollback latency.
    pub async fn expect_rollback(&self, variant: &str, good_sha: &str, gate: &str) -> Duration {
        self.expect_rollback_to(variant, (good_sha, "good"), gate)
            .await
    }

    /// As [`RolloutMesh::expect_rollback`], where the last good is build `good_variant`.
    pub async fn expect_rollback_to(
        &self,
        variant: &str,
        (good_sha, good_variant): (&str, &str),
        gate: &str,
    ) -> Duration {
        let (bad_sha, published) = self.publish(variant).expect("publish the bad variant");
        let plugin = self
            .wait_for(
                "the bad version to be quarantined",
                Duration::from_secs(60),
                |p| {
                    p["quarantine"]
                        .as_object()
                        .is_some_and(|q| q.keys().any(|k| k.starts_with(&bad_sha)))
                },
            )
            .await;
        assert!(plugin["rollout"].is_null(), "no rollout left: {plugin}");
        assert_eq!(plugin["last_good"]["sha256"], good_sha, "{plugin}");
        self.wait_everywhere(good_sha, good_variant, Duration::from_secs(30))
            .await;
        let latency = published.elapsed();
        let decisions = self.decisions().await.expect("decision log");
        let rollback = decisions
            .iter()
            .find(|d| {
                d["action"] == "rollback"
                    && d["to"].as_str().is_some_and(|t| t.starts_with(&bad_sha))
            })
            .unwrap_or_else(|| panic!("a rollback decision for {bad_sha}: {decisions:?}"));
        assert_eq!(rollback["gate"], gate, "{rollback}");
        assert!(
            !rollback["reason"].as_str().unwrap_or("").is_empty(),
            "{rollback}"
        );
        eventually(
            Duration::from_secs(10),
            "the rollback alert at the webhook",
            || async {
                let alerts = self.webhook.received();
                match alerts.iter().find(|a| a["action"] == "rollback") {
                    Some(alert)
                        if alert["to"]
                            .as_str()
                            .is_some_and(|t| t.starts_with(&bad_sha)) =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("alerts: {alerts:?}")),
                }
            },
        )
        .await;
        println!(
            "{variant}: rolled back by the {gate} gate; publish to last good on every Envoy: {} ms; reason: {}",
            latency.as_millis(),
            rollback["reason"]
        );
        latency
    }

    /// Waits until every Envoy has answered `answers` requests with the filter slot as it is
    /// (the traffic a first version is later compared with; Envoy streams its stats every
    /// second).
    pub async fn wait_for_traffic(&self, answers: u64) {
        eventually(
            Duration::from_secs(30),
            "traffic before the push",
            || async {
                for (i, traffic) in self.traffic.iter().enumerate() {
                    let total: u64 = traffic.tally().values().sum();
                    if total < answers {
                        return Err(format!("envoy {i}: {total} answers"));
                    }
                }
                Ok(())
            },
        )
        .await;
    }
}
