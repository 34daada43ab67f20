//! `make bench`: hot-swap latency through meshplug against Envoy's own file-based ECDS (the
//! floor), measured in one run with the swaps interleaved; then swaps under `wrk` load.
//!
//! Each swap publishes a build never seen before (build A or B plus a fresh custom section, so
//! every swap is a new sha and a new V8 compile), renames it into place, and polls through Envoy
//! until a response carries the new build's tag. Latency = rename → first such response.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e::Mesh;
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::mesh::TEST_API_KEY;
use e2e::paths::{bootstrap_template, filter_artifact};
use e2e::swaps::{Builds, paired, summary, wait_for_tag};
use meshplug::bootstrap::BootstrapVars;

/// A second Envoy whose `authz` slot reads its ECDS resource from a file: the floor.
struct FileEcds {
    envoy: Envoy,
    dir: PathBuf,
    config_json: String,
}

impl FileEcds {
    async fn start(mesh: &Mesh) -> anyhow::Result<Self> {
        let dir = mesh.dir().join("file-ecds");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("authz.yaml"), "resources: []\n")?;
        let mut vars = BootstrapVars::new();
        vars.insert("XDS_PORT", "0".into());
        vars.insert("UPSTREAM_PORT", mesh.upstream.addr.port().to_string());
        vars.insert("ECDS_DIR", dir.display().to_string());
        let options = EnvoyOptions {
            node_id: "envoy-file-ecds".into(),
            cluster: "floor".into(),
            template: bootstrap_template("bootstrap-file-ecds.yaml"),
            vars,
            workers: e2e::envoy::DEFAULT_WORKERS,
            on_host: None,
        };
        let envoy = Envoy::start(mesh.dir(), options).await?;
        let config_json = format!(r#"{{"api_keys": ["{TEST_API_KEY}"]}}"#);
        Ok(Self {
            envoy,
            dir,
            config_json,
        })
    }

    /// Writes the module and a resource file naming it, then renames the file into place.
    fn publish(&self, module: &[u8], n: usize) -> anyhow::Result<()> {
        let module_path = self.dir.join(format!("modules/{n}.wasm"));
        std::fs::create_dir_all(self.dir.join("modules"))?;
        std::fs::write(&module_path, module)?;
        let resource = format!(
            r#"resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: authz
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: authz
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: authz
        runtime: envoy.wasm.runtime.v8
        code: {{ local: {{ filename: "{}" }} }}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '{}'
"#,
            module_path.display(),
            self.config_json
        );
        let tmp = self.dir.join("modules/authz.yaml.tmp");
        std::fs::write(&tmp, resource)?;
        std::fs::rename(&tmp, self.dir.join("authz.yaml"))?;
        Ok(())
    }
}

fn report_latency(ours: &[Duration], floor: &[Duration]) {
    let o = summary(ours);
    let f = summary(floor);
    println!("## Hot-swap latency: rename into place -> first response from the new build");
    println!("swaps: {} each, interleaved", ours.len());
    println!("| path | min ms | median ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| meshplug (watch, hash, check, store, ADS/ECDS) | {:.1} | {:.1} | {:.1} | {:.1} |",
        o[0], o[1], o[2], o[3]
    );
    println!(
        "| Envoy file-based ECDS (floor) | {:.1} | {:.1} | {:.1} | {:.1} |",
        f[0], f[1], f[2], f[3]
    );
    println!(
        "| overhead (meshplug - floor) | {:.1} | {:.1} | {:.1} | {:.1} |",
        o[0] - f[0],
        o[1] - f[1],
        o[2] - f[2],
        o[3] - f[3]
    );
    println!("median ratio meshplug/floor: {:.2}", o[1] / f[1]);
    let [median, p90, max] = paired(ours, floor);
    println!(
        "paired per-swap overhead ms (same build, meshplug - floor): median {median:.1}, p90 {p90:.1}, max {max:.1}"
    );
}

async fn swaps_under_load(
    mesh: &Mesh,
    builds: &Builds,
    first: usize,
    count: usize,
) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = mesh.envoys[0].url("/");
    let seconds = 20 + count / 5;
    let wrk = Command::new("wrk")
        .args(["-t", "2", "-c", "32", "-d", &format!("{seconds}s"), "-H"])
        .arg(format!("x-api-key: {TEST_API_KEY}"))
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting wrk (make setup installs it)")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut latencies = Vec::new();
    let load_started = Instant::now();
    for n in first..first + count {
        let (module, tag) = builds.unique(n);
        let started = Instant::now();
        mesh.publish("authz.wasm", &module)?;
        latencies.push(wait_for_tag(&http, &url, tag, started).await?);
        if load_started.elapsed() > Duration::from_secs(seconds as u64 - 2) {
            break;
        }
    }
    let output = wrk.wait_with_output().context("waiting for wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let non_2xx = grab(&text, "Non-2xx or 3xx responses:").unwrap_or_else(|| "0".into());
    let socket_errors = grab(&text, "Socket errors:").unwrap_or_else(|| "none".into());
    let requests = grab(&text, "requests in").unwrap_or_default();
    let s = summary(&latencies);
    Ok(format!(
        "## {} swaps under wrk -t2 -c32 -d{seconds}s\n\
         swap latency ms: min {:.1}, median {:.1}, p99 {:.1}, max {:.1}\n\
         wrk: {requests}; non-2xx: {non_2xx}; socket errors: {socket_errors}\n\
         --- wrk output ---\n{text}",
        latencies.len(),
        s[0],
        s[1],
        s[2],
        s[3],
    ))
}

/// The rest of the first line of `text` containing `label`, trimmed.
fn grab(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let at = line.find(label)?;
        let rest = if label == "requests in" {
            line.trim()
        } else {
            line[at + label.len()..].trim()
        };
        Some(rest.to_string())
    })
}

/// Keeps the control plane's log of the run in `target/bench/` for a closer look.
fn keep_log(mesh: &Mesh) -> anyhow::Result<()> {
    let dir = e2e::paths::repo_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(
        &mesh.control_plane.log_path,
        dir.join("swap-control-plane.log"),
    )?;
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let swaps = flag(&args, "--swaps").unwrap_or(30);
    let load_swaps = flag(&args, "--load-swaps").unwrap_or(100);
    let builds = Builds {
        a: std::fs::read(filter_artifact("test/authz-a.wasm")?)?,
        b: std::fs::read(filter_artifact("test/authz-b.wasm")?)?,
    };
    let no_preflight = args.iter().any(|a| a == "--no-preflight");
    let control_plane_args: &[&str] = if no_preflight {
        &["--no-preflight"]
    } else {
        &[]
    };
    println!(
        "control plane pre-flight: {}",
        if no_preflight {
            "off"
        } else {
            "on (wasmi sandbox)"
        }
    );
    let mesh = Mesh::start_with(control_plane_args).await?;
    mesh.publish_authz_config()?;
    let floor = FileEcds::start(&mesh).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let ours_url = mesh.envoys[0].url("/");
    let floor_url = floor.envoy.url("/");

    let (first, tag) = builds.unique(1);
    let started = Instant::now();
    mesh.publish("authz.wasm", &first)?;
    floor.publish(&first, 1)?;
    wait_for_tag(&http, &ours_url, tag, started).await?;
    wait_for_tag(&http, &floor_url, tag, started).await?;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for n in 2..swaps + 2 {
        // Alternate which path goes first, so neither always runs while the other's Envoy
        // is still finishing its previous swap.
        let (module, tag) = builds.unique(n);
        if n.is_multiple_of(2) {
            let started = Instant::now();
            mesh.publish("authz.wasm", &module)?;
            ours.push(wait_for_tag(&http, &ours_url, tag, started).await?);
        }
        let started = Instant::now();
        floor.publish(&module, n)?;
        theirs.push(wait_for_tag(&http, &floor_url, tag, started).await?);
        if !n.is_multiple_of(2) {
            let started = Instant::now();
            mesh.publish("authz.wasm", &module)?;
            ours.push(wait_for_tag(&http, &ours_url, tag, started).await?);
        }
    }
    report_latency(&ours, &theirs);
    keep_log(&mesh)?;
    drop(floor);
    if load_swaps > 0 {
        let report = swaps_under_load(&mesh, &builds, swaps + 2, load_swaps).await?;
        println!("{report}");
    }
    Ok(())
}
