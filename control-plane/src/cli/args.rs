//! The command line's arguments (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::Limits;
use crate::serve::Guards;

/// `--prefer-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum KindArg {
    /// `<name>.wasm`.
    Wasm,
    /// `lib<name>.so`.
    Native,
}

/// `--ads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum AdsArg {
    /// State of the world.
    Grpc,
    /// Incremental.
    Delta,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum OutputArg {
    /// A table for people.
    Table,
    /// The admin API's own JSON document.
    Json,
}

/// `meshplug`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "meshplug",
    version,
    about = "Hot-swap Rust filters into a fleet of Envoy proxies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// On a host whose Envoys cannot read the control plane's disk: relay their ADS streams,
    /// fetch and verify each module they are sent, cache it on this host.
    Agent(AgentArgs),
    /// Run the control plane: watch the artifacts folder and serve ADS/ECDS.
    Serve(Box<ServeArgs>),
    /// Render an Envoy bootstrap from a template to standard output.
    Bootstrap(BootstrapArgs),
    /// Run the pre-flight on an artifact offline; exits non-zero when it is refused.
    Validate(ValidateArgs),
    /// Test builds against your own Envoy configuration and a real Envoy: the named filters
    /// are served over ECDS, the cases run; exits 1 when one fails.
    Test(TestArgs),
    /// Start something new: `meshplug init filter NAME` writes a filter crate on the SDK.
    #[command(subcommand)]
    Init(InitCommand),
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
    /// A small CA for mTLS: the control plane's certificate and each node's.
    #[command(subcommand)]
    Pki(PkiCommand),
}

#[derive(Debug, Subcommand)]
pub(super) enum StateCommand {
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

#[derive(Debug, clap::Args)]
pub(super) struct StateArgs {
    /// The data folder `meshplug serve --data` uses.
    #[arg(long, env = "MESHPLUG_DATA", default_value = ".meshplug")]
    pub(super) data: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct AdminArgs {
    /// The control plane's admin API.
    #[arg(long, env = "MESHPLUG_ADMIN", default_value = "http://127.0.0.1:18080")]
    pub(super) admin: String,
    /// The admin API's bearer token.
    #[arg(long, env = "MESHPLUG_ADMIN_TOKEN", hide_env_values = true)]
    pub(super) token: Option<String>,
    #[command(flatten)]
    pub(super) tls: ClientTlsArgs,
}

/// A client's TLS: the control plane's CA, and a client certificate when it asks for one.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct ClientTlsArgs {
    /// The CA certificate (PEM) the control plane's certificate chains to; turns TLS on.
    #[arg(long, env = "MESHPLUG_CA")]
    pub(super) ca: Option<PathBuf>,
    /// This client's certificate (PEM), when the control plane asks for one.
    #[arg(long, env = "MESHPLUG_TLS_CERT", requires = "ca")]
    pub(super) tls_cert: Option<PathBuf>,
    /// Its key (PEM).
    #[arg(long, env = "MESHPLUG_TLS_KEY", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(super) struct RolloutsArgs {
    #[command(flatten)]
    pub(super) admin: AdminArgs,
    /// Output: `table` or `json`.
    #[arg(short, long, value_enum, default_value_t = OutputArg::Table)]
    pub(super) output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub(super) struct ControlArgs {
    /// The filter.
    pub(super) plugin: String,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct PromoteArgs {
    /// The filter.
    pub(super) plugin: String,
    /// Skip every remaining stage.
    #[arg(long)]
    pub(super) full: bool,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct RetryArgs {
    /// The filter.
    pub(super) plugin: String,
    /// The quarantined version: its label or a prefix of its sha256.
    pub(super) version: String,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct ValidateArgs {
    /// The `.wasm` artifact.
    pub(super) artifact: PathBuf,
    /// The filter's configuration: a `.json` file must be JSON; any other is taken as
    /// written (as `serve` reads `<name>.json` and `<name>.config`); default `{}`.
    #[arg(long)]
    pub(super) config: Option<PathBuf>,
    /// Request fixtures (a JSON array).
    #[arg(long)]
    pub(super) fixtures: Option<PathBuf>,
    /// The configuration's JSON Schema.
    #[arg(long)]
    pub(super) schema: Option<PathBuf>,
    /// Fuel for each call into the module.
    #[arg(long, default_value_t = meshplug_preflight::Limits::default().fuel_per_call)]
    pub(super) fuel: u64,
    /// A minisign public key file the artifact must be signed with (`<artifact>.minisig`);
    /// repeat for several.
    #[arg(long)]
    pub(super) trusted_key: Vec<PathBuf>,
    /// How many of the trusted keys must have signed it (`<artifact>.minisig`,
    /// `<artifact>.<label>.minisig`), as a plugin's `spec.signers.threshold`.
    #[arg(long, default_value_t = 1, requires = "trusted_key")]
    pub(super) signatures_required: usize,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum InitCommand {
    /// A new filter crate: the filter, a unit test on the mock host, pre-flight fixtures, and
    /// an envoy.yaml with cases.yaml for `meshplug test`. Run from the workspace root.
    Filter {
        /// Its name (a crate and header name: lower-case letters, digits, '-').
        name: String,
        /// The folder filter crates live in, relative to the workspace root.
        #[arg(long, default_value = "filters")]
        dir: PathBuf,
        /// The SDK crate, relative to the workspace root.
        #[arg(long, default_value = "filters/sdk")]
        sdk: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct TestArgs {
    /// Your Envoy configuration (static listeners and clusters); never modified.
    #[arg(long)]
    pub(super) envoy_config: PathBuf,
    /// The cases (YAML): requests, expectations, swaps, loads.
    #[arg(long)]
    pub(super) cases: PathBuf,
    /// `NAME=BUILD`: the HTTP filter `NAME` of the configuration runs `BUILD` (`.wasm` or
    /// `.so`), served over ECDS; repeat for several.
    #[arg(long = "filter", value_parser = parse_filter)]
    pub(super) filters: Vec<(String, PathBuf)>,
    /// The Envoy binary (default: `$MESHPLUG_ENVOY`, then `envoy` on PATH).
    #[arg(long, env = "MESHPLUG_ENVOY")]
    pub(super) envoy: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub(super) junit: Option<PathBuf>,
    /// Where the rendered configuration, Envoy's log and the control plane's data go
    /// (default: a new folder under the system's temporary folder, kept when a case fails).
    #[arg(long)]
    pub(super) report_dir: Option<PathBuf>,
}

fn parse_filter(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, build)) if !name.is_empty() && !build.is_empty() => {
            Ok((name.to_string(), PathBuf::from(build)))
        }
        _ => Err(format!("{text:?}: give NAME=BUILD")),
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Folder watched for `<name>.wasm` builds and `<name>.json` configurations.
    #[arg(long, env = "MESHPLUG_ARTIFACTS", default_value = "artifacts")]
    pub(super) artifacts: PathBuf,
    /// Where the content-addressed store and state live.
    #[arg(long, env = "MESHPLUG_DATA", default_value = ".meshplug")]
    pub(super) data: PathBuf,
    /// ADS gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub(super) xds_addr: SocketAddr,
    /// Admin HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub(super) admin_addr: SocketAddr,
    /// Write the bound addresses here as JSON once serving.
    #[arg(long)]
    pub(super) ready_file: Option<PathBuf>,
    /// Largest artifact accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_artifact_bytes)]
    pub(super) max_artifact_bytes: u64,
    /// Largest filter configuration (and fixtures or schema file) accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_config_bytes)]
    pub(super) max_config_bytes: u64,
    /// Close an xDS connection that sends no byte for this many seconds (live proxies are
    /// pinged at a third of it).
    #[arg(long, default_value_t = Guards::default().xds_idle_timeout.as_secs_f64())]
    pub(super) xds_idle_timeout_s: f64,
    /// Largest node (id, cluster, metadata) an ADS stream may open with, in bytes.
    #[arg(long, default_value_t = Guards::default().max_node_bytes)]
    pub(super) max_node_bytes: usize,
    /// Forget a proxy disconnected this many seconds (unless a rollout in progress counts it).
    #[arg(long, default_value_t = Guards::default().forget_nodes_after.as_secs())]
    pub(super) forget_nodes_after_s: u64,
    /// Quiet time after a writer closes a file, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub(super) settle_after_close_ms: u64,
    /// Quiet time after the last write when no close was seen, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub(super) settle_without_close_ms: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub(super) log_json: bool,
    /// Turn the pre-flight sandbox off (structural checks only). For emergencies and tests.
    #[arg(long)]
    pub(super) no_preflight: bool,
    /// Fuel for each call into a module during pre-flight.
    #[arg(long, default_value_t = meshplug_preflight::Limits::default().fuel_per_call)]
    pub(super) preflight_fuel: u64,
    /// The Envoy 1.40 binary that checks built-in filters (`spec.envoyFilter`) with
    /// `--mode validate` before any push. Default: `envoy` on PATH.
    #[arg(long, env = "MESHPLUG_ENVOY")]
    pub(super) envoy: Option<PathBuf>,
    /// Rollout policy: a JSON file, or `immediate` (every proxy at once, ACK-gated only).
    /// Default: 1 proxy, 25%, 100%, then a 60 s bake.
    #[arg(long, env = "MESHPLUG_ROLLOUT_POLICY")]
    pub(super) rollout_policy: Option<String>,
    /// POST every alert (rollback, pause) here as JSON.
    #[arg(long, env = "MESHPLUG_ALERT_WEBHOOK")]
    pub(super) alert_webhook: Option<String>,
    /// Bearer token every admin endpoint but `/healthz` and `/readyz` requires.
    #[arg(long, env = "MESHPLUG_ADMIN_TOKEN", hide_env_values = true)]
    pub(super) admin_token: Option<String>,
    /// When the folder has both `<name>.wasm` and `lib<name>.so`, the kind the filter runs.
    /// The other is still checked and stored, but not deployed.
    #[arg(long, env = "MESHPLUG_PREFER_KIND", value_enum, default_value_t = KindArg::Wasm)]
    pub(super) prefer_kind: KindArg,
    /// A folder of `kind: Plugin` manifests (YAML, hot-reloaded). Given, manifests say which
    /// filters exist, their configuration, targets and rollout policy.
    #[arg(long, env = "MESHPLUG_PLUGINS")]
    pub(super) plugins: Option<PathBuf>,
    /// A folder of `kind: Listener` and `kind: Cluster` manifests. Given (with --plugins),
    /// meshplug serves LDS, RDS and CDS and composes each listener's filter chain.
    #[arg(long, env = "MESHPLUG_MESH", requires = "plugins")]
    pub(super) mesh: Option<PathBuf>,
    /// Serve the artifact store over HTTP here (`GET /artifacts/<sha256>.wasm|.so`), for
    /// proxies on other hosts: each such host runs `meshplug agent`, and its proxies are
    /// served remote modules from here.
    #[arg(long, env = "MESHPLUG_ARTIFACTS_ADDR")]
    pub(super) artifacts_addr: Option<SocketAddr>,
    /// The base URL agents fetch artifacts from (default `http://<artifacts-addr>`), e.g. when
    /// a load balancer or another name stands in front.
    #[arg(long, env = "MESHPLUG_ARTIFACTS_URL", requires = "artifacts_addr")]
    pub(super) artifacts_url: Option<String>,
    /// Artifact bodies streamed at once; more fetches wait up to 10 s for a turn.
    #[arg(long, default_value_t = 64)]
    pub(super) artifact_fetches: usize,
    /// A minisign public key file; given (repeat for several), every build must carry a
    /// `<file>.minisig` signed by one of them, or it is refused before it is stored.
    #[arg(long, env = "MESHPLUG_TRUSTED_KEY", value_delimiter = ',')]
    pub(super) trusted_key: Vec<PathBuf>,
    /// The control plane's certificate (PEM), for every listener (ADS and stats, artifacts,
    /// admin); reloaded when the file changes. Without it all listen on plain TCP.
    #[arg(long, env = "MESHPLUG_TLS_CERT", requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// Its key (PEM).
    #[arg(long, env = "MESHPLUG_TLS_KEY", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
    /// The CA (PEM) of proxies' and agents' client certificates: ADS, stats and the artifact
    /// service then require one, and a node id must match the certificate's
    /// `spiffe://meshplug/node/<id>`.
    #[arg(long, env = "MESHPLUG_CLIENT_CA", requires = "tls_cert")]
    pub(super) client_ca: Option<PathBuf>,
    /// The CA (PEM) of admin clients' certificates: the admin API then requires one.
    #[arg(long, env = "MESHPLUG_ADMIN_CLIENT_CA", requires = "tls_cert")]
    pub(super) admin_client_ca: Option<PathBuf>,
    /// Serve the admin API on a non-loopback address without TLS (refused otherwise).
    #[arg(long)]
    pub(super) insecure_admin: bool,
    /// Run as one of several replicas sharing their state in etcd:
    /// `etcd://host:port[,host:port…][/prefix]` (prefix `/meshplug`). Every replica serves
    /// xDS and the admin API; one leader, elected on a lease, decides. Needs
    /// `--artifacts-addr` (peers fetch artifacts from it). Default: one process, state in
    /// files under `--data`.
    #[arg(long, env = "MESHPLUG_STORE", requires = "artifacts_addr")]
    pub(super) store: Option<String>,
    /// This replica's id (default: host name and admin port).
    #[arg(long, env = "MESHPLUG_REPLICA_ID", requires = "store")]
    pub(super) replica_id: Option<String>,
    /// The leader's lease, in seconds: a leader that dies or is cut off is replaced after it.
    #[arg(long, default_value_t = 3, requires = "store")]
    pub(super) lease_s: u64,
}

#[derive(Debug, clap::Args)]
pub(super) struct AgentArgs {
    /// The control plane's ADS address, `host:port`.
    #[arg(long, env = "MESHPLUG_CONTROL_PLANE")]
    pub(super) control_plane: String,
    /// Where this host's Envoys connect for ADS (their bootstrap's `--xds-address`).
    #[arg(long, default_value = "127.0.0.1:18001")]
    pub(super) listen: SocketAddr,
    /// This host's artifact cache.
    #[arg(
        long,
        env = "MESHPLUG_AGENT_CACHE",
        default_value = ".meshplug-agent/cache"
    )]
    pub(super) cache: PathBuf,
    /// Fetch artifacts from this base URL (`http://host:port`) instead of the one the control
    /// plane names.
    #[arg(long)]
    pub(super) artifacts_url: Option<String>,
    /// Largest artifact fetched, in bytes.
    #[arg(long, default_value_t = Limits::default().max_artifact_bytes)]
    pub(super) max_artifact_bytes: u64,
    /// A file to write the bound address to, as JSON, once serving.
    #[arg(long)]
    pub(super) ready_file: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    pub(super) log_json: bool,
    /// TLS to the control plane (ADS and artifacts): its CA and this host's node
    /// certificate, read again for each new connection (so a rotated one is used next).
    #[command(flatten)]
    pub(super) tls: ClientTlsArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct BootstrapArgs {
    /// The template.
    #[arg(long, default_value = "envoy-config/bootstrap.yaml")]
    pub(super) template: PathBuf,
    #[arg(long, default_value = "envoy-1")]
    pub(super) node_id: String,
    #[arg(long, default_value = "meshplug")]
    pub(super) node_cluster: String,
    #[arg(long, default_value_t = 19901)]
    pub(super) admin_port: u16,
    #[arg(long, default_value_t = 10000)]
    pub(super) listener_port: u16,
    #[arg(long, default_value_t = 18000)]
    pub(super) xds_port: u16,
    #[arg(long, default_value_t = 18081)]
    pub(super) upstream_port: u16,
    /// Where Envoy streams its stats; default: the xDS port.
    #[arg(long)]
    pub(super) metrics_port: Option<u16>,
    /// Where Envoy connects for ADS, `host:port` (overrides --xds-port): the control plane,
    /// or on another host that host's `meshplug agent`.
    #[arg(long)]
    pub(super) xds_address: Option<SocketAddr>,
    /// Where Envoy streams its stats, `host:port`: on another host, the control plane's
    /// xDS address (default: the xDS address).
    #[arg(long)]
    pub(super) metrics_address: Option<SocketAddr>,
    /// The address the admin and HTTP listeners bind (default 127.0.0.1).
    #[arg(long)]
    pub(super) bind_address: Option<std::net::IpAddr>,
    /// `bootstrap-mesh.yaml`: node metadata labels that plugin targets match, as a YAML flow
    /// map, e.g. `{tier: edge, zone: a}`.
    #[arg(long, default_value = "{}")]
    pub(super) node_labels: String,
    /// `bootstrap-mesh.yaml`: state-of-the-world (`grpc`) or incremental (`delta`) ADS.
    #[arg(long, value_enum, default_value_t = AdsArg::Grpc)]
    pub(super) ads: AdsArg,
    /// mTLS to the control plane (ADS and stats): its CA, this node's certificate and key,
    /// and a folder the file-based SDS secrets are written to. Envoy watches them and picks
    /// up a rotated certificate without a restart.
    #[command(flatten)]
    pub(super) tls: ClientTlsArgs,
    /// The xDS address is this host's `meshplug agent` (plain TCP on loopback): TLS only on
    /// the stats cluster, which reaches the control plane itself.
    #[arg(long, requires = "ca")]
    pub(super) xds_via_agent: bool,
    /// Where the SDS secret files are written (default: beside the certificate).
    #[arg(long, requires = "ca")]
    pub(super) sds_dir: Option<PathBuf>,
    /// The name the control plane's certificate must carry (SNI and SAN check); default:
    /// the xDS host.
    #[arg(long, requires = "ca")]
    pub(super) server_name: Option<String>,
}

/// `meshplug pki`.
#[derive(Debug, Subcommand)]
pub(super) enum PkiCommand {
    /// Make a CA: `ca.pem` and `ca-key.pem` in --dir.
    Init(PkiArgs),
    /// Issue the control plane's certificate for these names (DNS names or IP addresses):
    /// `server.pem` and `server-key.pem`.
    Server {
        /// A DNS name or IP address clients reach it by; repeat for several.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        #[command(flatten)]
        args: PkiArgs,
    },
    /// Issue a client certificate: for a node (`--node-id`, `node-<id>.pem`) or an admin
    /// client (`--client`, `client-<name>.pem`).
    Issue {
        /// The node id it speaks for (URI SAN `spiffe://meshplug/node/<id>`).
        #[arg(long, conflicts_with = "client", required_unless_present = "client")]
        node_id: Option<String>,
        /// An admin client's name (URI SAN `spiffe://meshplug/client/<name>`).
        #[arg(long)]
        client: Option<String>,
        #[command(flatten)]
        args: PkiArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct PkiArgs {
    /// The CA's folder.
    #[arg(long, env = "MESHPLUG_PKI", default_value = ".meshplug-pki")]
    pub(super) dir: PathBuf,
    /// Where the certificate and key are written (default: --dir).
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    pub(super) days: u32,
    /// Replace files that exist.
    #[arg(long)]
    pub(super) force: bool,
}
