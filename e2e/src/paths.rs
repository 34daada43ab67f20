//! Where the harness finds Envoy, the meshplug binary and built filters.

use std::path::{Path, PathBuf};

use crate::HarnessError;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The pinned Envoy binary: `$MESHPLUG_ENVOY`, or the one `make setup` installs.
pub fn envoy_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("MESHPLUG_ENVOY") {
        return Ok(PathBuf::from(path));
    }
    let root = repo_root();
    let version = std::fs::read_to_string(root.join("envoy-config/.envoy-version"))
        .map_err(HarnessError::io("reading envoy-config/.envoy-version"))?;
    let path = root
        .join(".tools")
        .join(format!("envoy-{}", version.trim()))
        .join("envoy/_bin/envoy");
    existing(path, "Envoy", "run `make setup`")
}

/// The `meshplug` binary next to the running test executable (`target/<profile>/meshplug`).
pub fn meshplug_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("MESHPLUG_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(HarnessError::io("locating test binary"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    existing(
        dir.join("meshplug"),
        "meshplug binary",
        "run `cargo build -p meshplug`",
    )
}

/// A filter built by `make filters` (`target/filters/<file>`), or a test variant built by
/// `make test-filters` (`target/filters/test/<file>`).
pub fn filter_artifact(file: &str) -> Result<PathBuf, HarnessError> {
    let path = repo_root().join("target/filters").join(file);
    existing(path, "filter artifact", "run `make filters test-filters`")
}

/// An Envoy bootstrap template in `envoy-config/`.
pub fn bootstrap_template(name: &str) -> PathBuf {
    repo_root().join("envoy-config").join(name)
}

fn existing(
    path: PathBuf,
    what: &'static str,
    hint: &'static str,
) -> Result<PathBuf, HarnessError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(HarnessError::Missing { what, path, hint })
    }
}

/// A module of the third-party compatibility corpus (`../shared/compat/`, described by its
/// README): `MESHPLUG_COMPAT` if set, else beside the repository, else `/work/shared/compat`
/// (where a clean clone elsewhere finds it on this machine). Test inputs, never copied here.
pub fn compat_module(file: &str) -> Result<PathBuf, HarnessError> {
    let dirs = [
        std::env::var_os("MESHPLUG_COMPAT").map(PathBuf::from),
        Some(repo_root().join("../shared/compat")),
        Some(PathBuf::from("/work/shared/compat")),
    ];
    let found = dirs
        .into_iter()
        .flatten()
        .map(|dir| dir.join(file))
        .find(|p| p.exists());
    let path = found.unwrap_or_else(|| repo_root().join("../shared/compat").join(file));
    existing(
        path,
        "compatibility module",
        "set MESHPLUG_COMPAT to the corpus folder",
    )
}
