//! A real etcd cluster on loopback for the replica tests: Debian's `etcd-server` (`make setup`
//! installs it), each member on ephemeral client and peer ports with its own data folder,
//! stopped by PID when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::HarnessError;
use crate::process::ChildGuard;

/// One member.
#[derive(Debug)]
pub struct EtcdMember {
    /// `host:port` clients use.
    pub client: String,
    process: ChildGuard,
}

/// A running cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members, in start order.
    pub members: Vec<EtcdMember>,
    _dir: TempDir,
}

/// `n` free loopback ports (held until all are picked, then released for etcd to bind).
fn free_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(HarnessError::io("picking a free port"))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(HarnessError::io("reading a port"))
}

impl EtcdCluster {
    /// Starts an `n`-member cluster and waits until it answers a read.
    pub async fn start(n: usize) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("meshplug-e2e-etcd-")
            .tempdir()
            .map_err(HarnessError::io("creating etcd dir"))?;
        let ports = free_ports(2 * n)?;
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial: Vec<String> = (0..n).map(|i| format!("m{i}={}", peer(i))).collect();
        let token = format!("meshplug-{}-{}", std::process::id(), ports[0]);
        let mut members = Vec::new();
        for i in 0..n {
            let client = format!("127.0.0.1:{}", ports[2 * i]);
            let log = std::fs::File::create(dir.path().join(format!("m{i}.log")))
                .map_err(HarnessError::io("creating etcd log"))?;
            let log_err = log.try_clone().map_err(HarnessError::io("cloning log"))?;
            let mut command = member_command(dir.path(), i, &client, &peer(i));
            command
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-token", &token])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            let process = ChildGuard::spawn("etcd", &mut command)?;
            members.push(EtcdMember { client, process });
        }
        let cluster = Self { members, _dir: dir };
        cluster.wait_ready(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Every member's client address.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        self.members[i].process.kill();
    }

    /// The index of the member that leads etcd's own (raft) election now.
    pub async fn raft_leader(&self) -> Result<usize, HarnessError> {
        let endpoints = self.endpoints();
        let status = crate::eventually(
            Duration::from_secs(10),
            "an etcd member to say who leads",
            || async {
                let mut client = etcd_client::Client::connect([&endpoints[0]], None)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = client.status().await.map_err(|e| e.to_string())?;
                let leader = status.leader();
                (leader != 0)
                    .then_some(leader)
                    .ok_or("no raft leader yet".to_string())
            },
        )
        .await;
        for (i, member) in self.members.iter().enumerate() {
            let mut client = etcd_client::Client::connect([&member.client], None)
                .await
                .map_err(|e| HarnessError::NotReady(format!("etcd member {i}: {e}")))?;
            let mine = client
                .status()
                .await
                .map_err(|e| HarnessError::NotReady(format!("etcd member {i}: {e}")))?;
            if mine.header().map(|h| h.member_id()) == Some(status) {
                return Ok(i);
            }
        }
        Err(HarnessError::NotReady(format!(
            "no member has id {status:x}"
        )))
    }

    /// Stops member `i` (SIGSTOP) or lets it go on (SIGCONT): an unreachable member that
    /// keeps its data.
    pub fn set_stopped(&self, i: usize, stopped: bool) {
        self.members[i].process.set_stopped(stopped);
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), HarnessError> {
        let endpoints = self.endpoints();
        crate::eventually(timeout, "the etcd cluster to answer", || async {
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let mut client = etcd_client::Client::connect(&endpoints, Some(options))
                .await
                .map_err(|e| e.to_string())?;
            client.get("ready", None).await.map_err(|e| e.to_string())?;
            Ok(())
        })
        .await;
        Ok(())
    }
}

fn member_command(dir: &Path, i: usize, client: &str, peer: &str) -> Command {
    let client_url = format!("http://{client}");
    let mut command = Command::new("etcd");
    command
        .args(["--name", &format!("m{i}")])
        .arg("--data-dir")
        .arg(dir.join(format!("m{i}.data")))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", peer])
        .args(["--initial-advertise-peer-urls", peer])
        .args(["--initial-cluster-state", "new"])
        .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
        // As README asks of a user's etcd: replicas ping every second (see leader.rs).
        .args(["--grpc-keepalive-min-time", "1s"]);
    command
}
