//! A mesh of several hosts ([`crate::hosts`]): the control plane, its artifact service and the
//! upstream on the bridge in the test's namespace; on each host `meshplug agent` and one Envoy,
//! neither able to see the control plane's data or artifacts folders. Envoy `envoy-<i+1>` runs
//! on host `i`, its ADS going through that host's agent, its stats straight to the control
//! plane. The usual [`Mesh`] helpers (publish, wait for ACKs, requests) work unchanged.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use meshplug::bootstrap::BootstrapVars;

use crate::HarnessError;
use crate::control_plane::{ControlPlane, wait_for_ready_file};
use crate::envoy::{DEFAULT_WORKERS, Envoy, EnvoyOptions, OnHost};
use crate::hosts::HostNet;
use crate::mesh::{Mesh, work_dir};
use crate::paths::{bootstrap_template, meshplug_binary};
use crate::pki::TestPki;
use crate::process::ChildGuard;
use crate::upstream::Upstream;

/// A CA whose server certificate names the control plane's and the artifact service's
/// addresses on the bridge and loopback, and a certificate for each host's node.
fn node_pki(net: &HostNet, count: usize) -> Result<TestPki, HarnessError> {
    // The admin API stays on loopback.
    let names = [net.control_plane_ip(), net.artifacts_ip()].map(|ip| ip.to_string());
    let pki = TestPki::new(&[&names[0], &names[1], "127.0.0.1"])?;
    for i in 0..count {
        pki.issue_node(&format!("envoy-{}", i + 1), false)?;
    }
    Ok(pki)
}

/// What `meshplug agent --ready-file` writes.
#[derive(serde::Deserialize)]
struct AgentReady {
    listen: SocketAddr,
}

/// The hosts, their agents, and how each host's Envoy was started (to start it again).
#[derive(Debug)]
pub struct HostBed {
    /// One agent per host. Dropped before the hosts are removed.
    pub agents: Vec<ChildGuard>,
    /// The loopback port each host's agent listens on (its Envoy's xDS port).
    agent_ports: Vec<u16>,
    envoy_options: Vec<EnvoyOptions>,
    /// With [`Mesh::start_hosts_mtls`]: the CA, the control plane's certificate and each
    /// node's (`envoy-<i+1>`, used by that host's agent and Envoy).
    pub pki: Option<TestPki>,
    /// The namespaces and bridge; removed last.
    pub net: HostNet,
}

impl Mesh {
    /// Starts `count` hosts, each with an agent and an Envoy, and a control plane run with
    /// `control_plane_args` (and `--rollout-policy immediate` unless they choose one) serving
    /// xDS and artifacts on the bridge.
    pub async fn start_hosts(
        count: usize,
        control_plane_args: &[&str],
    ) -> Result<Self, HarnessError> {
        Self::start_hosts_in(count, control_plane_args, false).await
    }

    /// As [`Mesh::start_hosts`], everything that crosses the bridge over mTLS with
    /// certificates from `meshplug pki`: each agent speaks to the control plane (ADS and
    /// artifacts) with its node's certificate, each Envoy streams its stats with the same.
    pub async fn start_hosts_mtls(
        count: usize,
        control_plane_args: &[&str],
    ) -> Result<Self, HarnessError> {
        Self::start_hosts_in(count, control_plane_args, true).await
    }

    async fn start_hosts_in(
        count: usize,
        control_plane_args: &[&str],
        mtls: bool,
    ) -> Result<Self, HarnessError> {
        let net = HostNet::create(count)?;
        let dir = work_dir()?;
        let pki = match mtls {
            true => Some(node_pki(&net, count)?),
            false => None,
        };
        let tls_args = pki.as_ref().map(TestPki::serve_args).unwrap_or_default();
        let upstream = Upstream::start_on(net.control_plane_ip()).await?;
        let artifacts_addr = format!("{}:0", net.artifacts_ip());
        let mut args: Vec<&str> = control_plane_args.to_vec();
        if !args.contains(&"--rollout-policy") {
            args.extend(["--rollout-policy", "immediate"]);
        }
        args.extend(["--artifacts-addr", &artifacts_addr]);
        args.extend(tls_args.iter().map(String::as_str));
        let xds = SocketAddr::from((net.control_plane_ip(), 0));
        let artifacts = dir.path().join("artifacts");
        let mut control_plane =
            ControlPlane::start_serving_xds_on(dir.path(), &artifacts, &args, xds).await?;
        if let Some(pki) = &pki {
            control_plane.trust(&pki.client(None))?;
        }
        let mut mesh = Self {
            envoys: Vec::new(),
            bed: Some(HostBed {
                agents: Vec::new(),
                agent_ports: Vec::new(),
                envoy_options: Vec::new(),
                pki,
                net,
            }),
            control_plane,
            upstream,
            http: reqwest::Client::builder().no_proxy().build()?,
            envoy_workers: DEFAULT_WORKERS,
            dir,
        };
        for i in 0..count {
            mesh.start_host(i).await?;
        }
        Ok(mesh)
    }

    /// What no host may see: the control plane's data (its store) and watched folders.
    fn hidden(&self) -> Vec<PathBuf> {
        vec![
            self.dir.path().join("data"),
            self.control_plane.artifacts.clone(),
        ]
    }

    fn bed(&self) -> Result<&HostBed, HarnessError> {
        self.bed
            .as_ref()
            .ok_or_else(|| HarnessError::NotReady("not a multi-host mesh".into()))
    }

    async fn start_host(&mut self, i: usize) -> Result<(), HarnessError> {
        let host = self.bed()?.net.hosts[i].clone();
        let host_dir = self.dir.path().join(format!("host-{i}"));
        std::fs::create_dir_all(&host_dir).map_err(HarnessError::io("creating host dir"))?;
        let xds = self.control_plane.addrs.xds;
        let agent = self.start_agent(i, &host_dir, 0, &[]).await?;
        let agent_port = agent.1;
        if let Some(bed) = self.bed.as_mut() {
            bed.agents.push(agent.0);
            bed.agent_ports.push(agent_port);
        }
        let mut vars = BootstrapVars::new();
        vars.insert("XDS_PORT", agent_port.to_string());
        vars.insert("METRICS_HOST", xds.ip().to_string());
        vars.insert("METRICS_PORT", xds.port().to_string());
        vars.insert("UPSTREAM_HOST", self.upstream.addr.ip().to_string());
        vars.insert("UPSTREAM_PORT", self.upstream.addr.port().to_string());
        vars.insert("ADMIN_HOST", host.addr.to_string());
        vars.insert("LISTENER_HOST", host.addr.to_string());
        let node_id = format!("envoy-{}", i + 1);
        if let Some(pki) = &self.bed()?.pki {
            // ADS goes to the agent on loopback; only the stats cross the bridge.
            let ca = pki.path("ca.pem");
            let server = xds.ip().to_string();
            let tls = pki.envoy_vars(&node_id, &ca, &server, &host_dir.join("sds"))?;
            vars.extend(tls.into_iter().filter(|(name, _)| *name == "METRICS_TLS"));
        }
        let options = EnvoyOptions {
            node_id,
            cluster: "edge".into(),
            template: bootstrap_template("bootstrap.yaml"),
            vars,
            workers: self.envoy_workers,
            on_host: Some(OnHost {
                host,
                hidden: self.hidden(),
            }),
        };
        let envoy = Envoy::start(&host_dir, options.clone()).await?;
        self.envoys.push(envoy);
        if let Some(bed) = self.bed.as_mut() {
            bed.envoy_options.push(options);
        }
        Ok(())
    }

    /// Starts host `i`'s agent on loopback `port` (0: any) with `extra` arguments; returns it
    /// and the port it listens on (inside the host).
    async fn start_agent(
        &self,
        i: usize,
        host_dir: &Path,
        port: u16,
        extra: &[&str],
    ) -> Result<(ChildGuard, u16), HarnessError> {
        let host = self.bed()?.net.hosts[i].clone();
        let ready = host_dir.join("agent.ready.json");
        let log_path = host_dir.join("agent.log");
        let _ = std::fs::remove_file(&ready);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(HarnessError::io("opening agent log"))?;
        let log_err = log.try_clone().map_err(HarnessError::io("cloning log"))?;
        let hidden = self.hidden();
        let hidden: Vec<&Path> = hidden.iter().map(PathBuf::as_path).collect();
        let mut command = host.command(&meshplug_binary()?, &hidden);
        command.arg("agent");
        if let Some(pki) = &self.bed()?.pki {
            let client = pki.client(Some(&format!("envoy-{}", i + 1)));
            command.arg("--ca").arg(&client.ca);
            if let Some((cert, key)) = &client.identity {
                command
                    .arg("--tls-cert")
                    .arg(cert)
                    .arg("--tls-key")
                    .arg(key);
            }
        }
        command
            .args(["--control-plane", &self.control_plane.addrs.xds.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--log-json"])
            .args(extra)
            .arg("--cache")
            .arg(host_dir.join("cache"))
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "info,meshplug=debug")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut agent = ChildGuard::spawn("meshplug agent", &mut command)?;
        let ready: AgentReady =
            wait_for_ready_file(&mut agent, &ready, &log_path, Duration::from_secs(20)).await?;
        let port = ready.listen.port();
        Ok((agent, port))
    }

    /// Stops host `i`'s agent and starts it again on the same port with `extra` arguments
    /// (e.g. `--artifacts-url`); its Envoy reconnects by itself.
    pub async fn restart_agent_with(
        &mut self,
        i: usize,
        extra: &[&str],
    ) -> Result<(), HarnessError> {
        let port = self.bed()?.agent_ports[i];
        if let Some(bed) = self.bed.as_mut() {
            bed.agents[i].kill();
        }
        let host_dir = self.dir.path().join(format!("host-{i}"));
        let (agent, _) = self.start_agent(i, &host_dir, port, extra).await?;
        if let Some(bed) = self.bed.as_mut() {
            bed.agents[i] = agent;
        }
        Ok(())
    }

    /// Kills host `i`'s Envoy and starts it again with the same bootstrap (same agent).
    pub async fn restart_host_envoy(&mut self, i: usize) -> Result<(), HarnessError> {
        let mut options = self.bed()?.envoy_options[i].clone();
        // The same ports, so traffic aimed at this Envoy finds it again.
        let (admin, listener) = (self.envoys[i].admin, self.envoys[i].listener);
        options.vars.insert("ADMIN_PORT", admin.port().to_string());
        options
            .vars
            .insert("LISTENER_PORT", listener.port().to_string());
        self.envoys[i].process().kill();
        let host_dir = self.dir.path().join(format!("host-{i}"));
        self.envoys[i] = Envoy::start(&host_dir, options).await?;
        Ok(())
    }

    /// Asserts that the control plane sees every node it knows as behind an agent.
    pub async fn assert_every_node_behind_an_agent(&self) {
        let nodes = self
            .control_plane
            .api("/api/v1/nodes")
            .await
            .expect("nodes");
        for node in nodes["nodes"].as_array().expect("nodes") {
            assert_eq!(node["delivery"], "agent", "{node}");
        }
    }

    /// The test bed's network.
    pub fn net(&self) -> &HostNet {
        &self.bed.as_ref().expect("a multi-host mesh").net
    }
}
