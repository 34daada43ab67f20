//! The `meshplug` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use meshplug::artifact::ArtifactKind;
use meshplug::bootstrap::{render, standard_vars};
use meshplug::check::Limits;
use meshplug::client::{AdminClient, manifests_table, plugins_table, rollout_table, status_table};
use meshplug::debounce::Quiet;
use meshplug::rollout::Policy;
use meshplug::serve::{Guards, ServeConfig, run};

#[derive(Parser)]
#[command(
    name = "meshplug",
    version,
    about = "Hot-swap Rust filters into a fleet of Envoy proxies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: watch the artifacts folder and serve ADS/ECDS.
    Serve(Box<ServeArgs>),
    /// Render an Envoy bootstrap from a template to standard output.
    Bootstrap(BootstrapArgs),
    /// Run the pre-flight on an artifact offline; exits non-zero when it is refused.
    Validate(ValidateArgs),
    /// Show every filter's rollout: last good, rolling out, stage, state, quarantine.
    Rollouts(RolloutsArgs),
    /// Show every proxy and, per filter, the version it should run, the one it ACKed, and its
    /// state (SYNCED, SENT, NOT SENT, NACKED with the message).
    Status(RolloutsArgs),
    /// Show every filter: artifact kind and sha, configuration, publishes, last rejection.
    Plugins(RolloutsArgs),
    /// Manifest files read from the plugins and mesh folders: what is in force, what was
    /// refused and why (file, line, field).
    Manifests(RolloutsArgs),
    /// Stop a rollout advancing (the hard gates keep watching).
    Pause(ControlArgs),
    /// Lift a pause.
    Resume(ControlArgs),
    /// Pass the current stage now, or with --full promote at once.
    Promote(PromoteArgs),
    /// Put the last good version back now and quarantine the new one.
    Rollback(ControlArgs),
    /// Lift the quarantine of a version and roll it out again.
    Retry(RetryArgs),
    /// Check or repair the saved rollout state (`<data>/rollouts/state.json`).
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Subcommand)]
enum StateCommand {
    /// Say what `state.json` and its previous generation hold; exit 1 if the current one is
    /// not usable.
    Check(StateArgs),
    /// Put the previous generation back (`--previous`); the damaged file is kept aside.
    Restore {
        /// Restore the generation before the current one (`state.json.prev`).
        #[arg(long, required = true)]
        previous: bool,
        #[command(flatten)]
        args: StateArgs,
    },
    /// Start over on purpose: forget every filter's last good version and quarantine.
    Reset(StateArgs),
}

#[derive(clap::Args)]
struct StateArgs {
    /// The data folder `meshplug serve --data` uses.
    #[arg(long, env = "MESHPLUG_DATA", default_value = ".meshplug")]
    data: PathBuf,
}

#[derive(clap::Args)]
struct AdminArgs {
    /// The control plane's admin API.
    #[arg(long, env = "MESHPLUG_ADMIN", default_value = "http://127.0.0.1:18080")]
    admin: String,
    /// The admin API's bearer token.
    #[arg(long, env = "MESHPLUG_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(clap::Args)]
struct RolloutsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Output: `table` or `json`.
    #[arg(short, long, default_value = "table")]
    output: String,
}

#[derive(clap::Args)]
struct ControlArgs {
    /// The filter.
    plugin: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct PromoteArgs {
    /// The filter.
    plugin: String,
    /// Skip every remaining stage.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct RetryArgs {
    /// The filter.
    plugin: String,
    /// The quarantined version: its label or a prefix of its sha256.
    version: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// The `.wasm` artifact.
    artifact: PathBuf,
    /// The filter's configuration (JSON); default `{}`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Request fixtures (a JSON array).
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// The configuration's JSON Schema.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Fuel for each call into the module.
    #[arg(long, default_value_t = sandbox::Limits::default().fuel_per_call)]
    fuel: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Folder watched for `<name>.wasm` builds and `<name>.json` configurations.
    #[arg(long, env = "MESHPLUG_ARTIFACTS", default_value = "artifacts")]
    artifacts: PathBuf,
    /// Where the content-addressed store and state live.
    #[arg(long, env = "MESHPLUG_DATA", default_value = ".meshplug")]
    data: PathBuf,
    /// ADS gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:18000")]
    xds_addr: SocketAddr,
    /// Admin HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:18080")]
    admin_addr: SocketAddr,
    /// Write the bound addresses here as JSON once serving.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Largest artifact accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_artifact_bytes)]
    max_artifact_bytes: u64,
    /// Largest filter configuration (and fixtures or schema file) accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_config_bytes)]
    max_config_bytes: u64,
    /// Close an xDS connection that sends no byte for this many seconds (live proxies are
    /// pinged at a third of it).
    #[arg(long, default_value_t = Guards::default().xds_idle_timeout.as_secs_f64())]
    xds_idle_timeout_s: f64,
    /// Largest node (id, cluster, metadata) an ADS stream may open with, in bytes.
    #[arg(long, default_value_t = Guards::default().max_node_bytes)]
    max_node_bytes: usize,
    /// Forget a proxy disconnected this many seconds (unless a rollout in progress counts it).
    #[arg(long, default_value_t = Guards::default().forget_nodes_after.as_secs())]
    forget_nodes_after_s: u64,
    /// Quiet time after a writer closes a file, in milliseconds.
    #[arg(long, default_value_t = 100)]
    settle_after_close_ms: u64,
    /// Quiet time after the last write when no close was seen, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    settle_without_close_ms: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Turn the pre-flight sandbox off (structural checks only). For emergencies and tests.
    #[arg(long)]
    no_preflight: bool,
    /// Fuel for each call into a module during pre-flight.
    #[arg(long, default_value_t = sandbox::Limits::default().fuel_per_call)]
    preflight_fuel: u64,
    /// Rollout policy: a JSON file, or `immediate` (every proxy at once, ACK-gated only).
    /// Default: 1 proxy, 25%, 100%, then a 60 s bake.
    #[arg(long, env = "MESHPLUG_ROLLOUT_POLICY")]
    rollout_policy: Option<String>,
    /// POST every alert (rollback, pause) here as JSON.
    #[arg(long, env = "MESHPLUG_ALERT_WEBHOOK")]
    alert_webhook: Option<String>,
    /// Bearer token the admin API's rollout controls require.
    #[arg(long, env = "MESHPLUG_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// When the folder has both `<name>.wasm` and `lib<name>.so`, the kind the filter runs.
    /// The other is still checked and stored, but not deployed.
    #[arg(long, env = "MESHPLUG_PREFER_KIND", value_parser = ["wasm", "native"], default_value = "wasm")]
    prefer_kind: String,
    /// A folder of `kind: Plugin` manifests (YAML, hot-reloaded). Given, manifests say which
    /// filters exist, their configuration, targets and rollout policy.
    #[arg(long, env = "MESHPLUG_PLUGINS")]
    plugins: Option<PathBuf>,
    /// A folder of `kind: Listener` and `kind: Cluster` manifests. Given (with --plugins),
    /// meshplug serves LDS, RDS and CDS and composes each listener's filter chain.
    #[arg(long, env = "MESHPLUG_MESH", requires = "plugins")]
    mesh: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BootstrapArgs {
    /// The template.
    #[arg(long, default_value = "envoy-config/bootstrap.yaml")]
    template: PathBuf,
    #[arg(long, default_value = "envoy-1")]
    node_id: String,
    #[arg(long, default_value = "meshplug")]
    node_cluster: String,
    #[arg(long, default_value_t = 19901)]
    admin_port: u16,
    #[arg(long, default_value_t = 10000)]
    listener_port: u16,
    #[arg(long, default_value_t = 18000)]
    xds_port: u16,
    #[arg(long, default_value_t = 18081)]
    upstream_port: u16,
    /// Where Envoy streams its stats; default: the xDS port.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// `bootstrap-mesh.yaml`: node metadata labels that plugin targets match, as a YAML flow
    /// map, e.g. `{tier: edge, zone: a}`.
    #[arg(long, default_value = "{}")]
    node_labels: String,
    /// `bootstrap-mesh.yaml`: state-of-the-world (`grpc`) or incremental (`delta`) ADS.
    #[arg(long, value_parser = ["grpc", "delta"], default_value = "grpc")]
    ads: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Bootstrap(args) => bootstrap(args),
        Command::Validate(args) => validate(args),
        Command::Rollouts(args) => show(args, "/api/v1/rollouts", rollout_table),
        Command::Status(args) => show(args, "/api/v1/nodes", status_table),
        Command::Plugins(args) => show(args, "/api/v1/plugins", plugins_table),
        Command::Manifests(args) => show(args, "/api/v1/manifests", manifests_table),
        Command::Pause(args) => control(args.admin, &args.plugin, "pause", serde_json::json!({})),
        Command::Resume(args) => control(args.admin, &args.plugin, "resume", serde_json::json!({})),
        Command::Rollback(args) => {
            control(args.admin, &args.plugin, "rollback", serde_json::json!({}))
        }
        Command::Promote(args) => control(
            args.admin,
            &args.plugin,
            "promote",
            serde_json::json!({ "full": args.full }),
        ),
        Command::Retry(args) => control(
            args.admin,
            &args.plugin,
            "retry",
            serde_json::json!({ "version": args.version }),
        ),
        Command::State(command) => state(command),
    }
}

fn state(command: StateCommand) -> anyhow::Result<()> {
    use meshplug::rollout::state::envelope;
    let path = |args: &StateArgs| args.data.join("rollouts").join("state.json");
    let now = meshplug::ingest::unix_ms();
    match command {
        StateCommand::Check(args) => {
            let current = envelope::load(&path(&args))?;
            let prev_path = envelope::previous(&path(&args));
            let previous = envelope::load(&prev_path)?;
            println!(
                "{}: {}",
                path(&args).display(),
                envelope::describe(&current)
            );
            println!("{}: {}", prev_path.display(), envelope::describe(&previous));
            if !envelope::usable(&current) {
                anyhow::bail!("the current rollout state is not usable");
            }
        }
        StateCommand::Restore { args, .. } => {
            println!("{}", envelope::restore_previous(&path(&args), now)?);
        }
        StateCommand::Reset(args) => println!("{}", envelope::reset(&path(&args), now)?),
    }
    Ok(())
}

fn rollout_policy(arg: Option<&str>) -> anyhow::Result<Policy> {
    match arg {
        None => Ok(Policy::default()),
        Some("immediate") => Ok(Policy::immediate()),
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            Policy::from_json(&bytes).map_err(|e| anyhow::anyhow!("rollout policy {path}: {e}"))
        }
    }
}

fn admin_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Prints an admin API listing as JSON (the API's own, stable shape) or as a table.
fn show(
    args: RolloutsArgs,
    path: &str,
    table: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.admin, args.admin.token)?;
    let list = admin_runtime()?.block_on(client.get(path))?;
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&list)?),
        "table" => print!("{}", table(&list)),
        other => anyhow::bail!("unknown output {other:?}: table or json"),
    }
    Ok(())
}

fn control(
    admin: AdminArgs,
    plugin: &str,
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let client = AdminClient::new(&admin.admin, admin.token)?;
    let message = admin_runtime()?.block_on(client.control(plugin, action, body))?;
    println!("{message}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    // Every Envoy holds one ADS connection: allow as many as the hard limit permits.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(err) => tracing::warn!(error = %err, "could not raise the open-file limit"),
    }
    let config = ServeConfig {
        artifacts_dir: args.artifacts,
        data_dir: args.data,
        xds_addr: args.xds_addr,
        admin_addr: args.admin_addr,
        ready_file: args.ready_file,
        limits: Limits {
            max_artifact_bytes: args.max_artifact_bytes,
            max_config_bytes: args.max_config_bytes,
        },
        quiet: Quiet {
            after_close: Duration::from_millis(args.settle_after_close_ms),
            without_close: Duration::from_millis(args.settle_without_close_ms),
        },
        preflight: (!args.no_preflight).then_some(sandbox::Limits {
            max_module_bytes: usize::try_from(args.max_artifact_bytes).unwrap_or(usize::MAX),
            fuel_per_call: args.preflight_fuel,
            ..sandbox::Limits::default()
        }),
        rollout_policy: rollout_policy(args.rollout_policy.as_deref())?,
        alert_webhook: args.alert_webhook,
        admin_token: args.admin_token,
        prefer_kind: if args.prefer_kind == "native" {
            ArtifactKind::Native
        } else {
            ArtifactKind::Wasm
        },
        plugins_dir: args.plugins,
        mesh_dir: args.mesh,
        guards: Guards {
            xds_idle_timeout: Duration::try_from_secs_f64(args.xds_idle_timeout_s)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--xds-idle-timeout-s must be a positive number of seconds")?,
            max_node_bytes: args.max_node_bytes,
            forget_nodes_after: Duration::from_secs(args.forget_nodes_after_s),
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(run(config, shutdown_signal()));
    // A blocking task still running (a pre-flight, a reload) does not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result?;
    Ok(())
}

fn bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(&args.template)
        .with_context(|| format!("reading {}", args.template.display()))?;
    let mut vars = standard_vars(
        &args.node_id,
        &args.node_cluster,
        [
            ("ADMIN_PORT", args.admin_port),
            ("LISTENER_PORT", args.listener_port),
            ("XDS_PORT", args.xds_port),
            ("UPSTREAM_PORT", args.upstream_port),
        ],
    );
    let metrics_port = args.metrics_port.unwrap_or(args.xds_port);
    vars.insert("METRICS_PORT", metrics_port.to_string());
    vars.insert("NODE_LABELS", args.node_labels);
    let api = if args.ads == "delta" {
        "DELTA_GRPC"
    } else {
        "GRPC"
    };
    vars.insert("ADS_API", api.to_string());
    print!("{}", render(&template, &vars)?);
    Ok(())
}

fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let wasm = read(&args.artifact)?;
    let config = args
        .config
        .as_ref()
        .map(read)
        .transpose()?
        .unwrap_or_else(|| b"{}".to_vec());
    let fixtures = match &args.fixtures {
        Some(path) => sandbox::parse_fixtures(&read(path)?).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let schema: Option<serde_json::Value> = match &args.schema {
        Some(path) => Some(serde_json::from_slice(&read(path)?).context("schema is not JSON")?),
        None => None,
    };
    let name = args
        .artifact
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("filter")
        .to_string();
    let limits = sandbox::Limits {
        fuel_per_call: args.fuel,
        ..sandbox::Limits::default()
    };
    let preflight = sandbox::Preflight::new(limits).map_err(anyhow::Error::msg)?;
    match preflight.run(&name, &wasm, &config, &fixtures, schema.as_ref()) {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Err(rejection) => {
            eprintln!("refused: {rejection}");
            std::process::exit(1);
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
