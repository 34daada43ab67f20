//! Runs the `sandbox` pre-flight on what is about to be published, and keys refusals so that
//! one never runs twice for the same inputs.

use meshplug_preflight::{Preflight, Rejection};

use crate::registry::{PluginStatus, PreflightPass};
use crate::store::sha256_hex;

/// What a pre-flight of one artifact with one plugin's inputs came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The store key the refusal is remembered under.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// The store key of a refusal of `sha` with `plugin`'s current inputs. Refusals of the module
/// itself (format, ABI, imports) hold whatever the configuration; the others hold only for the
/// configuration, fixtures and schema they ran with.
pub fn refusal_key(
    sha: &str,
    config_json: &str,
    plugin: Option<&PluginStatus>,
    rejection: &Rejection,
) -> String {
    if module_alone(rejection) {
        sha.to_string()
    } else {
        format!("{sha}.{}", inputs_digest(config_json, plugin))
    }
}

/// The store keys under which a refusal of `sha` with `plugin`'s inputs may be remembered.
pub fn lookup_keys(sha: &str, config_json: &str, plugin: Option<&PluginStatus>) -> [String; 2] {
    [
        sha.to_string(),
        format!("{sha}.{}", inputs_digest(config_json, plugin)),
    ]
}

fn module_alone(rejection: &Rejection) -> bool {
    matches!(
        rejection,
        Rejection::Empty
            | Rejection::TooLarge { .. }
            | Rejection::InvalidModule(_)
            | Rejection::NotProxyWasm
            | Rejection::UnsupportedAbi(_)
            | Rejection::MissingExport(_)
            | Rejection::UnknownImport { .. }
            | Rejection::Instantiate(_)
    )
}

fn inputs_digest(config_json: &str, plugin: Option<&PluginStatus>) -> String {
    let fixtures = plugin
        .map(|p| serde_json::to_string(&p.fixture_list).unwrap_or_default())
        .unwrap_or_default();
    let schema = plugin
        .and_then(|p| p.schema.as_ref())
        .map(ToString::to_string)
        .unwrap_or_default();
    let vm = plugin.map(|p| p.vm.digest_lines()).unwrap_or_default();
    // Without VM settings the digest is what it was before they existed.
    let joined = format!("{config_json}\n{fixtures}\n{schema}{vm}");
    sha256_hex(joined.as_bytes())[..16].to_string()
}

/// Runs the pre-flight of `wasm` as filter `name` with `config_json` and the plugin's fixtures,
/// schema and VM settings.
pub fn run(
    preflight: &Preflight,
    name: &str,
    sha: &str,
    wasm: &[u8],
    config_json: &str,
    plugin: Option<&PluginStatus>,
) -> Result<meshplug_preflight::Report, Refusal> {
    let fixtures = plugin
        .map(|p| p.fixture_list.as_slice())
        .unwrap_or_default();
    let schema = plugin.and_then(|p| p.schema.as_ref());
    let vm = plugin.map_or_else(meshplug_preflight::VmInputs::default, |p| {
        meshplug_preflight::VmInputs {
            configuration: p.vm.configuration.clone().unwrap_or_default(),
            root_id: p.vm.root_id.clone().unwrap_or_default(),
        }
    });
    preflight
        .run_in(&vm, name, wasm, config_json.as_bytes(), fixtures, schema)
        .map_err(|rejection| Refusal {
            key: refusal_key(sha, config_json, plugin, &rejection),
            reason: format!("pre-flight: {rejection}"),
        })
}

/// What the dashboard and `/api/v1/plugins` show of a pass: times in whole µs.
pub fn passed(sha: &str, config_json: &str, report: meshplug_preflight::Report) -> PreflightPass {
    let micros = |ms: f64| (ms * 1000.0).round().max(0.0) as u64;
    PreflightPass {
        sha256: sha.to_string(),
        config_sha256: sha256_hex(config_json.as_bytes()),
        fixtures_passed: report.fixtures_passed,
        compile_us: micros(report.compile_ms),
        run_us: micros(report.run_ms),
        logs: report.logs,
    }
}
