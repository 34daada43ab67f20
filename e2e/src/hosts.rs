//! A test bed of hosts: each host is its own Linux network namespace, joined by a veth pair
//! to a bridge in the test's namespace, with an address from 198.18.0.0/15 (the benchmarking
//! range) and nothing else routed. The bridge carries two addresses: one where the control
//! plane serves xDS and the upstream listens, one for the artifact service, so a host's route
//! to the artifacts can be cut alone. Processes run on a host in a private mount namespace
//! where chosen folders (the control plane's data) are hidden under an empty tmpfs.
//!
//! Everything is created by `ip` as root and removed on drop, also on panic. Without the
//! privilege the harness fails with a message saying so; it never skips.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::HarnessError;

/// The hosts and the bridge between them.
#[derive(Debug)]
pub struct HostNet {
    subnet: u8,
    bridge: String,
    /// The hosts, in order.
    pub hosts: Vec<Host>,
}

/// One host: a network namespace and its address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name.
    pub netns: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
}

impl HostNet {
    /// Creates `count` hosts on a fresh /24 of 198.18.0.0/15.
    pub fn create(count: usize) -> Result<Self, HarnessError> {
        preflight()?;
        let subnet = free_subnet()?;
        let bridge = format!("mpbr{subnet}");
        let mut net = Self {
            subnet,
            bridge: bridge.clone(),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        for addr in [net.control_plane_ip(), net.artifacts_ip()] {
            ip(&["addr", "add", &format!("{addr}/24"), "dev", &bridge])?;
        }
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..count {
            net.add_host(i)?;
        }
        Ok(net)
    }

    fn add_host(&mut self, i: usize) -> Result<(), HarnessError> {
        let netns = format!("mp{}h{i}", self.subnet);
        let outside = format!("mp{}v{i}", self.subnet);
        let inside = format!("mp{}p{i}", self.subnet);
        let addr = Ipv4Addr::new(198, 18, self.subnet, 10 + i as u8);
        ip(&["netns", "add", &netns])?;
        // Pushed before it is configured: a failure below still removes it on drop.
        self.hosts.push(Host {
            netns: netns.clone(),
            addr,
        });
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ])?;
        ip(&["link", "set", &outside, "master", &self.bridge, "up"])?;
        ip(&["link", "set", &inside, "netns", &netns])?;
        let cidr = format!("{addr}/24");
        ip(&["-n", &netns, "addr", "add", &cidr, "dev", &inside])?;
        ip(&["-n", &netns, "link", "set", &inside, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Where the control plane serves xDS (and the upstream listens), on the bridge.
    pub fn control_plane_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 1)
    }

    /// Where the artifact service listens, on the bridge.
    pub fn artifacts_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 2)
    }

    /// Cuts host `i`'s route to the artifact service (xDS still flows).
    pub fn cut_artifacts(&self, i: usize) -> Result<(), HarnessError> {
        let target = format!("{}/32", self.artifacts_ip());
        ip(&[
            "-n",
            &self.hosts[i].netns,
            "route",
            "add",
            "prohibit",
            &target,
        ])
    }

    /// Gives host `i` its route to the artifact service back.
    pub fn restore_artifacts(&self, i: usize) -> Result<(), HarnessError> {
        let target = format!("{}/32", self.artifacts_ip());
        ip(&[
            "-n",
            &self.hosts[i].netns,
            "route",
            "del",
            "prohibit",
            &target,
        ])
    }
}

impl Host {
    /// A command that runs `program` on this host, with each of `hidden` replaced by an
    /// empty folder.
    pub fn command(&self, program: &Path, hidden: &[&Path]) -> Command {
        let mut script = String::from("set -e; ");
        for (n, _) in hidden.iter().enumerate() {
            script.push_str(&format!("mount -t tmpfs meshplug-hidden \"${}\"; ", n + 1));
        }
        script.push_str(&format!("shift {}; exec \"$@\"", hidden.len()));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.netns])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &script, "meshplug-host"])
            .args(hidden)
            .arg(program);
        command
    }
}

impl Drop for HostNet {
    fn drop(&mut self) {
        for host in &self.hosts {
            // Deleting the namespace deletes the veth pair with it.
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

fn preflight() -> Result<(), HarnessError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(HarnessError::NotReady(
            "the multi-host test bed needs root (network namespaces, veth pairs, mounts); \
             run the e2e tests as root, as CI does"
                .into(),
        ));
    }
    let probe = Command::new("ip").arg("-V").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err(HarnessError::NotReady(
            "the multi-host test bed needs `ip` (iproute2) and `unshare` (util-linux)".into(),
        ));
    }
    Ok(())
}

/// A /24 none of whose bridge, veth ends or namespaces exist: one per test process, from its
/// PID. The veth ends count too: a namespace deleted by the test before is removed by the
/// kernel later, with its veth (a CI run met `mp110v0` still there, its bridge gone).
fn free_subnet() -> Result<u8, HarnessError> {
    let start = (std::process::id() % 250) as u8;
    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut existing = names("/sys/class/net");
    existing.extend(names("/run/netns"));
    for offset in 0..250u16 {
        let subnet = ((u16::from(start) + offset) % 250) as u8 + 1;
        let ours = [
            format!("mpbr{subnet}"),
            format!("mp{subnet}v"),
            format!("mp{subnet}p"),
            format!("mp{subnet}h"),
        ];
        let taken = existing.iter().any(|name| {
            ours.iter().any(|prefix| {
                name.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
            })
        });
        if !taken {
            return Ok(subnet);
        }
    }
    Err(HarnessError::NotReady(
        "no free 198.18.x.0/24 for the test bed".into(),
    ))
}

fn ip(args: &[&str]) -> Result<(), HarnessError> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(HarnessError::io("running ip"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(HarnessError::NotReady(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}
