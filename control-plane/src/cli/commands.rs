//! What each command does, over the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::args::{
    AdminArgs, AdsArg, AgentArgs, BootstrapArgs, ClientTlsArgs, InitCommand, KindArg, OutputArg,
    PkiArgs, PkiCommand, RolloutsArgs, ServeArgs, StateArgs, StateCommand, TestArgs, ValidateArgs,
};
use crate::artifact::ArtifactKind;
use crate::bootstrap::{render, standard_vars};
use crate::check::Limits;
use crate::client::AdminClient;
use crate::debounce::Quiet;
use crate::rollout::Policy;
use crate::serve::{Guards, Mode, ServeConfig, ServeTls, run};
use crate::tls::ClientTls;

fn client_tls(args: ClientTlsArgs) -> anyhow::Result<Option<ClientTls>> {
    Ok(ClientTls::from_flags(args.ca, args.tls_cert, args.tls_key)?)
}

pub(super) fn pki(command: PkiCommand) -> anyhow::Result<()> {
    use crate::pki::{self, Subject};
    let out = |args: &PkiArgs| args.out.clone().unwrap_or_else(|| args.dir.clone());
    let (written, key) = match command {
        PkiCommand::Init(args) => (pki::init(&args.dir, args.days, args.force)?, "CA"),
        PkiCommand::Server { names, args } => {
            let subject = Subject::Server(names);
            let path = pki::issue(&args.dir, &subject, &out(&args), args.days, args.force)?;
            (path, "server certificate")
        }
        PkiCommand::Issue {
            node_id,
            client,
            args,
        } => {
            let subject = match (node_id, client) {
                (Some(id), _) => Subject::Node(id),
                (None, Some(name)) => Subject::Client(name),
                (None, None) => anyhow::bail!("give --node-id or --client"),
            };
            let path = pki::issue(&args.dir, &subject, &out(&args), args.days, args.force)?;
            (path, "client certificate")
        }
    };
    println!(
        "wrote {key} {} (key beside it, -key.pem)",
        written.display()
    );
    Ok(())
}

pub(super) fn state(command: StateCommand) -> anyhow::Result<()> {
    use crate::rollout::state::envelope;
    let path = |args: &StateArgs| args.data.join("rollouts").join("state.json");
    let now = crate::ingest::unix_ms();
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
pub(super) fn show(
    args: RolloutsArgs,
    path: &str,
    table: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let tls = client_tls(args.admin.tls)?;
    let client = AdminClient::new(&args.admin.admin, args.admin.token, tls.as_ref())?;
    let list = admin_runtime()?.block_on(client.get(path))?;
    match args.output {
        OutputArg::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        OutputArg::Table => print!("{}", table(&list)),
    }
    Ok(())
}

/// `meshplug status`: every node; with replicas, every replica first (the leader, its term,
/// the nodes each holds).
pub(super) fn status(args: RolloutsArgs) -> anyhow::Result<()> {
    let tls = client_tls(args.admin.tls)?;
    let client = AdminClient::new(&args.admin.admin, args.admin.token, tls.as_ref())?;
    let runtime = admin_runtime()?;
    let mut nodes = runtime.block_on(client.get("/api/v1/nodes"))?;
    // A control plane from before replicas has no such endpoint: nodes alone.
    let replicas = runtime
        .block_on(client.get("/api/v1/replicas"))
        .unwrap_or_default();
    match args.output {
        OutputArg::Json => {
            if replicas["enabled"] == true {
                nodes["replicas"] = replicas;
            }
            println!("{}", serde_json::to_string_pretty(&nodes)?);
        }
        OutputArg::Table => print!(
            "{}{}",
            crate::client::replicas_table(&replicas),
            crate::client::status_table(&nodes)
        ),
    }
    Ok(())
}

pub(super) fn control(
    admin: AdminArgs,
    plugin: &str,
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let tls = client_tls(admin.tls)?;
    let client = AdminClient::new(&admin.admin, admin.token, tls.as_ref())?;
    let message = admin_runtime()?.block_on(client.control(plugin, action, body))?;
    println!("{message}");
    Ok(())
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    // Every Envoy holds one ADS connection: allow as many as the hard limit permits.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(err) => tracing::warn!(error = %err, "could not raise the open-file limit"),
    }
    let config = serve_config(args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(run(config, shutdown_signal()));
    // A blocking task still running (a pre-flight, a reload) does not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result?;
    Ok(())
}

pub(super) fn agent(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    let config = crate::agent::AgentConfig {
        control_plane: args.control_plane,
        listen: args.listen,
        cache_dir: args.cache,
        artifacts_url: args.artifacts_url,
        max_artifact_bytes: args.max_artifact_bytes,
        ready_file: args.ready_file,
        tls: client_tls(args.tls)?,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(crate::agent::run(config, shutdown_signal()))?;
    Ok(())
}

/// The minisign public keys in `paths`.
fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<meshplug_core::signature::TrustedKey>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading trusted key {}", path.display()))?;
            meshplug_core::signature::TrustedKey::parse(&text)
                .map_err(|e| anyhow::anyhow!("trusted key {}: {e}", path.display()))
        })
        .collect()
}

/// The control plane's settings from `meshplug serve`'s arguments.
pub(super) fn serve_config(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let trusted_keys = trusted_keys(&args.trusted_key)?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(ServeTls {
            cert,
            key,
            client_ca: args.client_ca,
            admin_client_ca: args.admin_client_ca,
        }),
        // clap requires the two together.
        _ => None,
    };
    let replicas = match &args.store {
        Some(url) => {
            let mut replicas = crate::replica::ReplicaConfig::parse(url)?;
            replicas.id = args.replica_id;
            replicas.lease = Duration::from_secs(args.lease_s.max(1));
            Some(replicas)
        }
        None => None,
    };
    Ok(ServeConfig {
        replicas,
        trusted_keys,
        tls,
        insecure_admin: args.insecure_admin,
        artifacts_dir: args.artifacts,
        data_dir: args.data,
        xds_addr: args.xds_addr,
        admin_addr: args.admin_addr,
        artifacts: args
            .artifacts_addr
            .map(|addr| crate::serve::ArtifactsConfig {
                addr,
                public_url: args.artifacts_url,
                max_in_flight: args.artifact_fetches,
            }),
        ready_file: args.ready_file,
        limits: Limits {
            max_artifact_bytes: args.max_artifact_bytes,
            max_config_bytes: args.max_config_bytes,
        },
        quiet: Quiet {
            after_close: Duration::from_millis(args.settle_after_close_ms),
            without_close: Duration::from_millis(args.settle_without_close_ms),
        },
        preflight: (!args.no_preflight).then_some(meshplug_preflight::Limits {
            max_module_bytes: usize::try_from(args.max_artifact_bytes).unwrap_or(usize::MAX),
            fuel_per_call: args.preflight_fuel,
            ..meshplug_preflight::Limits::default()
        }),
        envoy: args.envoy,
        rollout_policy: rollout_policy(args.rollout_policy.as_deref())?,
        alert_webhook: args.alert_webhook,
        admin_token: args.admin_token,
        prefer_kind: match args.prefer_kind {
            KindArg::Wasm => ArtifactKind::Wasm,
            KindArg::Native => ArtifactKind::Native,
        },
        mode: match (args.plugins, args.mesh) {
            (Some(plugins), Some(mesh)) => Mode::Mesh { plugins, mesh },
            (Some(plugins), None) => Mode::Manifests { plugins },
            // clap requires --plugins with --mesh.
            (None, _) => Mode::Folder,
        },
        guards: Guards {
            xds_idle_timeout: Duration::try_from_secs_f64(args.xds_idle_timeout_s)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--xds-idle-timeout-s must be a positive number of seconds")?,
            max_node_bytes: args.max_node_bytes,
            forget_nodes_after: Duration::from_secs(args.forget_nodes_after_s),
        },
    })
}

pub(super) fn bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(&args.template)
        .with_context(|| format!("reading {}", args.template.display()))?;
    let tls = xds_tls(&args)?;
    let via_agent = args.xds_via_agent;
    let mut vars = bootstrap_vars(args);
    if let Some(tls) = tls {
        for (path, text) in tls.secret_files() {
            let tmp = path.with_extension("yaml.tmp");
            crate::store::replace_synced(&path, &tmp, text.as_bytes())
                .with_context(|| format!("writing the SDS secret {}", path.display()))?;
        }
        if !via_agent {
            vars.insert("XDS_TLS", tls.transport_socket());
        }
        vars.insert("METRICS_TLS", tls.transport_socket());
    }
    print!("{}", render(&template, &vars)?);
    Ok(())
}

/// The mTLS settings of `meshplug bootstrap`, paths made absolute (Envoy may run elsewhere).
fn xds_tls(args: &BootstrapArgs) -> anyhow::Result<Option<crate::bootstrap::tls::XdsTls>> {
    let Some(tls) = client_tls(args.tls.clone())? else {
        return Ok(None);
    };
    let Some((cert, key)) = tls.identity else {
        anyhow::bail!("an Envoy bootstrap with --ca needs --tls-cert and --tls-key too");
    };
    let absolute = |p: &PathBuf| {
        p.canonicalize()
            .with_context(|| format!("resolving {}", p.display()))
    };
    let (ca, cert, key) = (absolute(&tls.ca)?, absolute(&cert)?, absolute(&key)?);
    let sds_dir = match &args.sds_dir {
        Some(dir) => absolute(dir)?,
        None => cert.parent().map(PathBuf::from).unwrap_or_default(),
    };
    // Behind an agent, TLS goes to the control plane's stats address, not the agent's.
    let reached = match args.xds_via_agent {
        true => args.metrics_address,
        false => args.xds_address,
    };
    let server_name = args
        .server_name
        .clone()
        .unwrap_or_else(|| reached.map_or_else(|| "127.0.0.1".to_string(), |a| a.ip().to_string()));
    Ok(Some(crate::bootstrap::tls::XdsTls {
        ca,
        cert,
        key,
        server_name,
        sds_dir,
    }))
}

/// The template placeholders `meshplug bootstrap`'s arguments fill.
pub(super) fn bootstrap_vars(args: BootstrapArgs) -> crate::bootstrap::BootstrapVars {
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
    if let Some(xds) = args.xds_address {
        vars.insert("XDS_HOST", xds.ip().to_string());
        vars.insert("XDS_PORT", xds.port().to_string());
        if args.metrics_port.is_none() {
            vars.insert("METRICS_HOST", xds.ip().to_string());
            vars.insert("METRICS_PORT", xds.port().to_string());
        }
    }
    if let Some(metrics) = args.metrics_address {
        vars.insert("METRICS_HOST", metrics.ip().to_string());
        vars.insert("METRICS_PORT", metrics.port().to_string());
    }
    if let Some(bind) = args.bind_address {
        vars.insert("ADMIN_HOST", bind.to_string());
        vars.insert("LISTENER_HOST", bind.to_string());
    }
    vars.insert("NODE_LABELS", args.node_labels);
    let api = match args.ads {
        AdsArg::Delta => "DELTA_GRPC",
        AdsArg::Grpc => "GRPC",
    };
    vars.insert("ADS_API", api.to_string());
    vars
}

pub(super) fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let wasm = read(&args.artifact)?;
    let keys = trusted_keys(&args.trusted_key)?;
    if !keys.is_empty() {
        if args.signatures_required == 0 || args.signatures_required > keys.len() {
            anyhow::bail!(
                "--signatures-required must be between 1 and the number of --trusted-key ({})",
                keys.len()
            );
        }
        let policy = meshplug_core::signature::SignerPolicy {
            threshold: args.signatures_required,
            keys,
        };
        let mut signatures = Vec::new();
        for path in crate::ingest::signature_paths(&args.artifact).map_err(anyhow::Error::msg)? {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            signatures.push(text);
        }
        match policy.verify(&wasm, &signatures) {
            Ok(signers) => println!("signed by key {}", signers.join(", ")),
            Err(reason) => anyhow::bail!("{}: {reason}", args.artifact.display()),
        }
    }
    // The rule `serve` follows: `.json` must be JSON, any other file is taken as written.
    let config = match &args.config {
        Some(path) => meshplug_core::config_shape::ConfigShape::of_file(path)
            .read(&read(path)?)
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?
            .into_bytes(),
        None => b"{}".to_vec(),
    };
    let fixtures = match &args.fixtures {
        Some(path) => {
            meshplug_preflight::parse_fixtures(&read(path)?).map_err(anyhow::Error::msg)?
        }
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
    let limits = meshplug_preflight::Limits {
        fuel_per_call: args.fuel,
        ..meshplug_preflight::Limits::default()
    };
    let preflight = meshplug_preflight::Preflight::new(limits).map_err(anyhow::Error::msg)?;
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

/// `meshplug test`: runs the cases, prints the summary, writes JUnit XML; exits 1 when a case
/// fails (2 when the run could not start).
pub(super) fn test(args: TestArgs) -> anyhow::Result<()> {
    let keep = args.report_dir.is_some();
    let report_dir = match args.report_dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("meshplug-test-")
            .tempdir()
            .context("creating a report folder")?
            .keep(),
    };
    let plan = crate::testkit::TestPlan {
        envoy_config: args.envoy_config,
        cases: args.cases,
        filters: args.filters.into_iter().collect(),
        envoy: args.envoy.unwrap_or_else(|| PathBuf::from("envoy")),
        report_dir: report_dir.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match runtime.block_on(crate::testkit::run(&plan)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!(
                "meshplug test: {err}
(see {})",
                report_dir.display()
            );
            std::process::exit(2);
        }
    };
    print!("{}", report.summary);
    if !report.passed() || keep {
        println!("rendered configuration: {}", report.rendered.display());
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, &report.junit)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.passed() {
        if !keep {
            let _ = std::fs::remove_dir_all(&report_dir);
        }
        return Ok(());
    }
    println!("kept for inspection: {}", report_dir.display());
    std::process::exit(1);
}

/// `meshplug init filter NAME`: writes the crate's files (never over an existing folder) and
/// says what to do next.
pub(super) fn init(command: InitCommand) -> anyhow::Result<()> {
    let InitCommand::Filter { name, dir, sdk } = command;
    let files = crate::scaffold::filter_files(&name, &dir, &sdk).map_err(anyhow::Error::msg)?;
    let crate_dir = dir.join(&name);
    anyhow::ensure!(
        !crate_dir.exists(),
        "{} already exists; nothing was written",
        crate_dir.display()
    );
    anyhow::ensure!(
        sdk.join("Cargo.toml").is_file(),
        "no SDK at {} (run from the workspace root, or give --sdk)",
        sdk.display()
    );
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let at = crate_dir.display();
    println!(
        "\nNext:\n  1. add \"{at}\" to [workspace] members in Cargo.toml\n  \
         2. cargo test -p {name}\n  \
         3. filters/build-wasm.sh {name} target/filters/{name}.wasm   (and build-native.sh for lib{name}.so)\n  \
         4. meshplug validate target/filters/{name}.wasm --fixtures {at}/preflight/fixtures.json\n  \
         5. meshplug test --envoy-config {at}/envoy.yaml --cases {at}/cases.yaml --filter {name}=target/filters/{name}.wasm"
    );
    Ok(())
}
