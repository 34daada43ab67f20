//! The check of a built-in Envoy filter (`spec.envoyFilter`) before any push: Envoy 1.40's
//! own `--mode validate` on a throwaway bootstrap whose one listener runs the filter. Chosen
//! over decoding against descriptors because it is exactly what the proxies will run: protobuf
//! JSON, the API's validation rules, and the filter's own load-time checks (a Lua script that
//! does not compile, an RBAC rule that does not parse) are all Envoy's, with Envoy's message.
//! envoy-types carries neither a JSON mapping nor the descriptors, and about 0.1 s of Envoy
//! per changed filter is cheap beside a rollout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::Error;

/// Where the filter sits in the throwaway bootstrap, as Envoy names it in errors; replaced by
/// the manifest's field in the message.
const FILTER_PATH: &str = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.<any>.http_filters[0].typed_config.<any>";

/// The Envoy binary that checks built-in filters: the one given, else `envoy` on `PATH`.
pub fn envoy_binary(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("envoy"))
        .find(|candidate| candidate.is_file())
}

/// Checks `typed_config_json` (protobuf JSON with `@type`) as filter `name` with `envoy`:
/// `Ok(Ok(()))` when Envoy accepts it, `Ok(Err(reason))` with Envoy's reason, the filter's
/// fields named as the manifest names them (`spec.envoyFilter.config…`); `Err` when Envoy
/// could not be run at all (no verdict on the filter).
pub fn validate(
    envoy: &Path,
    name: &str,
    typed_config_json: &str,
) -> Result<Result<(), String>, Error> {
    let temp = std::env::temp_dir();
    let dir = tempfile::tempdir().map_err(Error::io("creating a folder in", &temp))?;
    let bootstrap = dir.path().join("validate.yaml");
    std::fs::write(&bootstrap, bootstrap_for(name, typed_config_json))
        .map_err(Error::io("writing", &bootstrap))?;
    let output = Command::new(envoy)
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(&bootstrap)
        .arg("--base-id")
        .arg(base_id().to_string())
        .arg("-l")
        .arg("critical")
        .output()
        .map_err(Error::io(
            "running Envoy to validate a built-in filter",
            envoy,
        ))?;
    if output.status.success() {
        return Ok(Ok(()));
    }
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    Ok(Err(reason(&log)))
}

/// A base id of its own for each run, apart from any running proxy's (tests use small ones).
fn base_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let run = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    900_000 + (std::process::id() % 90) * 1000 + run
}

/// The bootstrap Envoy validates: one listener whose chain is the filter, then the router.
fn bootstrap_for(name: &str, typed_config_json: &str) -> String {
    let name = serde_json::Value::String(name.to_string());
    format!(
        r#"{{"static_resources": {{"listeners": [{{"name": "validate",
  "address": {{"socket_address": {{"address": "127.0.0.1", "port_value": 0}}}},
  "filter_chains": [{{"filters": [{{"name": "envoy.filters.network.http_connection_manager",
    "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "stat_prefix": "validate", "route_config": {{}},
      "http_filters": [{{"name": {name}, "typed_config": {typed_config_json}}},
        {{"name": "envoy.filters.http.router", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}}]}}}}]}}]}}]}}}}"#
    )
}

/// Envoy's reason from its log: the text after "error initializing configuration '…': ",
/// with the throwaway bootstrap's path to the filter replaced by the manifest's field.
fn reason(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("error initializing configuration"))
        .or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("Envoy refused it without a message");
    let text = line
        .split_once("': ")
        .map_or(line, |(_, rest)| rest)
        .replace(FILTER_PATH, "spec.envoyFilter.config")
        .replace("envoy.config.bootstrap.v3.Bootstrap @ ", "");
    format!("Envoy refuses the built-in filter: {}", text.trim())
}

#[cfg(test)]
mod tests;
