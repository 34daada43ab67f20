//! `xds-load`: simulated Envoy nodes on ADS, for scale benchmarks and the scale test.
//!
//! Each node opens its own connection and one ADS stream, sends a real-looking `Node` (id,
//! cluster, Envoy 1.40.0 build version, metadata), subscribes to ECDS resources by name, and
//! answers every response: an ACK, or a NACK for a configured share of nodes. A dropped stream is
//! reopened with backoff. A node can be told to stop reading after its first response (a slow
//! reader). Every response's arrival and answer time is recorded for convergence measurements.

mod fetch;
mod node;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

pub use fetch::Fetching;
pub use node::{NodeBehaviour, NodeRecord};

/// How the simulated fleet behaves.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The ADS server.
    pub target: SocketAddr,
    /// How many nodes (= connections = streams).
    pub nodes: usize,
    /// ECDS resource names each node subscribes to.
    pub resource_names: Vec<String>,
    /// Percent of nodes (the lowest indices after the slow readers) that NACK every response.
    pub nack_percent: u8,
    /// How many nodes stop reading after their first response.
    pub slow_readers: usize,
    /// Node id prefix.
    pub id_prefix: String,
    /// Behave as hosts behind `meshplug agent`: fetch and check each module before the ACK.
    pub fetch: Option<Fetching>,
    /// Connect over mTLS, each node with its own certificate for its node id.
    pub tls: Option<Arc<LoadTls>>,
}

/// The CA the simulated nodes' certificates are issued from (in memory, one per node).
#[derive(Debug)]
pub struct LoadTls {
    ca_cert: String,
    ca_key: String,
}

impl LoadTls {
    /// The CA of `pki`.
    pub fn from_pki(pki: &crate::pki::TestPki) -> Result<Self, crate::HarnessError> {
        let read = |name: &str| {
            std::fs::read_to_string(pki.path(name))
                .map_err(crate::HarnessError::io("reading the CA"))
        };
        Ok(Self {
            ca_cert: read("ca.pem")?,
            ca_key: read("ca-key.pem")?,
        })
    }

    /// The TLS settings of node `id`: a fresh certificate naming it.
    pub fn client(&self, id: &str) -> Result<tonic::transport::ClientTlsConfig, String> {
        let subject = meshplug::pki::Subject::Node(id.to_string());
        let (cert, key) = meshplug::pki::issue_pem((&self.ca_cert, &self.ca_key), &subject, 1)
            .map_err(|e| e.to_string())?;
        Ok(tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_cert))
            .identity(tonic::transport::Identity::from_pem(cert, key)))
    }
}

/// One received response, as a node saw it.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// `version_info`.
    pub version: String,
    /// When it arrived.
    pub received: Instant,
    /// When the ACK or NACK for it was handed to the stream.
    pub answered: Option<Instant>,
    /// Its encoded size.
    pub bytes: usize,
    /// Whether the node NACKed it.
    pub nacked: bool,
    /// Artifact bytes fetched before the answer.
    pub fetched: usize,
}

/// A running simulated fleet; its tasks are aborted on drop.
#[derive(Debug)]
pub struct LoadRun {
    records: Vec<Arc<Mutex<NodeRecord>>>,
    behaviours: Vec<NodeBehaviour>,
    tasks: Vec<JoinHandle<()>>,
    /// When the run started.
    pub started: Instant,
}

/// Convergence of one change across the nodes that read.
#[derive(Debug, Clone)]
pub struct Convergence {
    /// Per node: T0 → receipt of a new version.
    pub received: Vec<Duration>,
    /// Per ACKing node: T0 → its ACK written.
    pub acked: Vec<Duration>,
    /// Encoded bytes of the responses that carried the change, over all nodes.
    pub bytes: usize,
}

impl LoadRun {
    /// Starts every node.
    pub fn start(config: &LoadConfig) -> Self {
        let started = Instant::now();
        let nack_nodes = config.nodes * usize::from(config.nack_percent) / 100;
        let mut records = Vec::with_capacity(config.nodes);
        let mut behaviours = Vec::with_capacity(config.nodes);
        let mut tasks = Vec::with_capacity(config.nodes);
        for index in 0..config.nodes {
            let behaviour = if index < config.slow_readers {
                NodeBehaviour::SlowReader
            } else if index < config.slow_readers + nack_nodes {
                NodeBehaviour::Nack
            } else {
                NodeBehaviour::Ack
            };
            let record = Arc::new(Mutex::new(NodeRecord::default()));
            let id = format!("{}-{index:05}", config.id_prefix);
            tasks.push(tokio::spawn(node::run(
                config.clone(),
                id,
                behaviour,
                Arc::clone(&record),
            )));
            records.push(record);
            behaviours.push(behaviour);
        }
        Self {
            records,
            behaviours,
            tasks,
            started,
        }
    }

    fn each<T>(&self, mut f: impl FnMut(NodeBehaviour, &NodeRecord) -> T) -> Vec<T> {
        self.records
            .iter()
            .zip(&self.behaviours)
            .map(|(record, behaviour)| {
                f(
                    *behaviour,
                    &record.lock().unwrap_or_else(PoisonError::into_inner),
                )
            })
            .collect()
    }

    /// How many nodes have received at least one response.
    pub fn nodes_served(&self) -> usize {
        self.each(|_, r| !r.receipts.is_empty())
            .into_iter()
            .filter(|served| *served)
            .count()
    }

    /// The latest version each reading node has received, by node index.
    pub fn latest_versions(&self) -> BTreeMap<usize, String> {
        self.each(|b, r| (b, r.receipts.last().map(|x| x.version.clone())))
            .into_iter()
            .enumerate()
            .filter(|(_, (b, _))| *b != NodeBehaviour::SlowReader)
            .filter_map(|(i, (_, v))| v.map(|v| (i, v)))
            .collect()
    }

    /// Receipts per node (all behaviours), for assertions.
    pub fn receipts(&self) -> Vec<(NodeBehaviour, Vec<Receipt>)> {
        self.each(|b, r| (b, r.receipts.clone()))
    }

    /// Stream (re)connections per node.
    pub fn connects(&self) -> Vec<u32> {
        self.each(|_, r| r.connects)
    }

    /// Waits until every reading node has received a version other than `before[node]`, then
    /// measures from `t0`. `None` on timeout.
    pub async fn converge(
        &self,
        before: &BTreeMap<usize, String>,
        t0: Instant,
        timeout: Duration,
    ) -> Option<Convergence> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(done) = self.measure(before, t0) {
                return Some(done);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn measure(&self, before: &BTreeMap<usize, String>, t0: Instant) -> Option<Convergence> {
        let mut out = Convergence {
            received: Vec::new(),
            acked: Vec::new(),
            bytes: 0,
        };
        for (index, (behaviour, receipts)) in self.receipts().into_iter().enumerate() {
            if behaviour == NodeBehaviour::SlowReader {
                continue;
            }
            let old = before.get(&index);
            let new = receipts
                .iter()
                .find(|r| r.received >= t0 && Some(&r.version) != old)?;
            out.received.push(new.received - t0);
            out.bytes += new.bytes;
            if behaviour == NodeBehaviour::Ack {
                out.acked.push(new.answered? - t0);
            }
        }
        Some(out)
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// p50, p99 and max of `samples`, in ms.
pub fn percentiles(samples: &[Duration]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(at(0.5)), ms(at(0.99)), ms(sorted[sorted.len() - 1]))
}
