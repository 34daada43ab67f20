//! `make run`: an upstream, the control plane and one Envoy on loopback, until Ctrl-C.
//! `make run-mesh` (`--composed`): the same, with the listener, routes, cluster and plugins
//! from manifests in `.run/mesh/` and `.run/plugins/` (examples written on first run), and an
//! Envoy whose listeners all come from meshplug. Every process it starts is stopped when it
//! exits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use e2e::control_plane::ControlPlane;
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::paths::{bootstrap_template, repo_root};
use e2e::upstream::Upstream;
use meshplug::bootstrap::BootstrapVars;

const DEV_KEY: &str = "dev-key";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let artifacts = flag(&args, "--artifacts")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/filters"));
    let listen_port = flag(&args, "--listen-port").unwrap_or_else(|| "10000".into());
    let composed = args.iter().any(|a| a == "--composed");
    let workdir = repo_root().join(".run");
    std::fs::create_dir_all(&workdir).context("creating .run")?;
    std::fs::create_dir_all(&artifacts).context("creating the artifacts folder")?;
    if composed {
        return composed_mesh(&workdir, &artifacts, &listen_port).await;
    }
    let config = artifacts.join("authz.json");
    if !config.exists() {
        std::fs::write(&config, format!("{{\"api_keys\": [\"{DEV_KEY}\"]}}\n"))
            .context("writing the default authz configuration")?;
    }

    let upstream = Upstream::start().await?;
    let args = policy_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let control_plane =
        ControlPlane::start_with_admin_on(&workdir, &artifacts, &args, admin_addr()).await?;
    let mut vars = BootstrapVars::new();
    vars.insert("XDS_PORT", control_plane.addrs.xds.port().to_string());
    vars.insert("UPSTREAM_PORT", upstream.addr.port().to_string());
    vars.insert("LISTENER_PORT", listen_port);
    let envoy = Envoy::start(
        &workdir,
        EnvoyOptions {
            node_id: "envoy-1".into(),
            cluster: "dev".into(),
            template: bootstrap_template("bootstrap.yaml"),
            vars,
            workers: e2e::envoy::DEFAULT_WORKERS,
            on_host: None,
        },
    )
    .await?;

    println!("meshplug dev mesh is up");
    println!("  watched folder : {}", artifacts.display());
    println!(
        "  try            : curl -i -H 'x-api-key: {DEV_KEY}' {}",
        envoy.url("/")
    );
    println!("  without a key  : curl -i {}", envoy.url("/"));
    println!(
        "  fleet status   : {} (or curl -s http://{}/api/v1/nodes)",
        cli(&control_plane, "status"),
        control_plane.addrs.admin
    );
    println!(
        "  dashboard      : http://{}/ui/",
        control_plane.addrs.admin
    );
    println!("  Envoy admin    : http://{}", envoy.admin);
    println!("  logs           : {}", workdir.display());
    println!("Edit a filter and run `make filters`, or copy a .wasm into the watched folder.");
    until_ctrl_c(envoy, control_plane, upstream).await
}

/// The rollout policy argument. Every save reaches the one dev Envoy at once, unless
/// MESHPLUG_ROLLOUT_POLICY chooses a policy (then it goes through the rollout gates like
/// production).
fn policy_args() -> Vec<String> {
    match std::env::var_os("MESHPLUG_ROLLOUT_POLICY") {
        Some(_) => Vec::new(),
        None => vec!["--rollout-policy".into(), "immediate".into()],
    }
}

/// Writes `text` to `path` unless the file is there (the user's edits win).
fn example(path: &Path, text: &str) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn composed_mesh(workdir: &Path, artifacts: &Path, port: &str) -> anyhow::Result<()> {
    let (plugins, mesh) = (workdir.join("plugins"), workdir.join("mesh"));
    std::fs::create_dir_all(&plugins).context("creating .run/plugins")?;
    std::fs::create_dir_all(&mesh).context("creating .run/mesh")?;
    let upstream = Upstream::start().await?;
    // The upstream's port changes every run: this one file is rewritten each time.
    std::fs::write(
        mesh.join("upstream.yaml"),
        format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: upstream\n\
             spec:\n  endpoints: [\"{}\"]\n",
            upstream.addr
        ),
    )
    .context("writing .run/mesh/upstream.yaml")?;
    example(
        &mesh.join("ingress.yaml"),
        &format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata:\n  name: ingress\n\
             spec:\n  port: {port}\n  routes:\n    - prefix: /\n      cluster: upstream\n"
        ),
    )?;
    example(
        &plugins.join("authz.yaml"),
        &format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata:\n  name: authz\n\
             spec:\n  artifact: authz\n  phase: authn\n  config:\n    api_keys: [{DEV_KEY}]\n\
             \x20 targets:\n    labels: {{tier: dev}}\n"
        ),
    )?;
    let mut args = policy_args();
    for (flag, dir) in [("--plugins", &plugins), ("--mesh", &mesh)] {
        args.extend([flag.to_string(), dir.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let control_plane =
        ControlPlane::start_with_admin_on(workdir, artifacts, &args, admin_addr()).await?;
    let mut vars = BootstrapVars::new();
    vars.insert("XDS_PORT", control_plane.addrs.xds.port().to_string());
    vars.insert("NODE_LABELS", "{tier: dev}".into());
    vars.insert("ADS_API", "GRPC".into());
    let options = EnvoyOptions {
        node_id: "envoy-1".into(),
        cluster: "dev".into(),
        template: bootstrap_template("bootstrap-mesh.yaml"),
        vars,
        workers: e2e::envoy::DEFAULT_WORKERS,
        on_host: None,
    };
    let envoy = Envoy::start(workdir, options).await?;
    println!("meshplug dev mesh (composed from manifests) is up");
    println!(
        "  manifests      : {} and {}",
        plugins.display(),
        mesh.display()
    );
    println!("  builds         : {}", artifacts.display());
    println!(
        "  try            : curl -i -H 'x-api-key: {DEV_KEY}' {}",
        envoy.url("/")
    );
    println!("  the chain      : {}", cli(&control_plane, "status"));
    println!("  manifests      : {}", cli(&control_plane, "manifests"));
    println!(
        "  dashboard      : http://{}/ui/",
        control_plane.addrs.admin
    );
    println!(
        "Add a plugin: write plugins/<name>.yaml (kind: Plugin); remove the file to remove it."
    );
    until_ctrl_c(envoy, control_plane, upstream).await
}

/// Waits for Ctrl-C, then stops Envoy, the control plane and the upstream, in that order.
async fn until_ctrl_c(
    envoy: Envoy,
    control_plane: ControlPlane,
    upstream: Upstream,
) -> anyhow::Result<()> {
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(envoy);
    drop(control_plane);
    drop(upstream);
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Where the CLI looks when given no `--admin`.
const CLI_DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 18080);

/// The admin API's address: the CLI's default when it is free, so that `meshplug status`
/// works as typed; any free port when something else holds it (the printed commands say it).
fn admin_addr() -> SocketAddr {
    free_or_any(CLI_DEFAULT_ADMIN)
}

fn free_or_any(wanted: SocketAddr) -> SocketAddr {
    match std::net::TcpListener::bind(wanted) {
        Ok(_) => wanted,
        Err(_) => SocketAddr::new(wanted.ip(), 0),
    }
}

/// The CLI command `command` against this control plane (`--admin` only when not the default).
fn cli(control_plane: &ControlPlane, command: &str) -> String {
    if control_plane.addrs.admin == CLI_DEFAULT_ADMIN {
        format!("meshplug {command}")
    } else {
        format!(
            "meshplug {command} --admin http://{}",
            control_plane.addrs.admin
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_admin_address_is_taken_when_free_and_any_port_otherwise() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = held.local_addr().expect("addr");
        assert_eq!(free_or_any(taken).port(), 0, "held: any port");
        drop(held);
        assert_eq!(free_or_any(taken), taken, "free: the one wanted");
    }
}
