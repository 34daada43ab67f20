//! `make run`: an upstream, the control plane and one Envoy on loopback, until Ctrl-C.
//! Every process it starts is stopped when it exits.

use std::path::PathBuf;

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
    let workdir = repo_root().join(".run");
    std::fs::create_dir_all(&workdir).context("creating .run")?;
    std::fs::create_dir_all(&artifacts).context("creating the artifacts folder")?;
    let config = artifacts.join("authz.json");
    if !config.exists() {
        std::fs::write(&config, format!("{{\"api_keys\": [\"{DEV_KEY}\"]}}\n"))
            .context("writing the default authz configuration")?;
    }

    let upstream = Upstream::start().await?;
    // Every save reaches the one dev Envoy at once, unless MESHPLUG_ROLLOUT_POLICY chooses a
    // policy (then it goes through the rollout gates like production).
    let args: &[&str] = match std::env::var_os("MESHPLUG_ROLLOUT_POLICY") {
        Some(_) => &[],
        None => &["--rollout-policy", "immediate"],
    };
    let control_plane = ControlPlane::start_watching(&workdir, &artifacts, args).await?;
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
        "  fleet status   : curl -s http://{}/api/v1/nodes",
        control_plane.addrs.admin
    );
    println!("  Envoy admin    : http://{}", envoy.admin);
    println!("  logs           : {}", workdir.display());
    println!("Edit a filter and run `make filters`, or copy a .wasm into the watched folder.");
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
