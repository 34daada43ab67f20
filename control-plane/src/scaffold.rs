//! `meshplug init filter NAME`: the files of a new filter crate on the SDK, ready to build both
//! ways and tested three ways (a unit test on the mock host, pre-flight fixtures, and a
//! `cases.yaml` that `meshplug test` runs against its `envoy.yaml`). Pure: names in, files out.

use std::path::{Component, Path, PathBuf};

const CARGO: &str = include_str!("scaffold/filter/Cargo.toml.tmpl");
const LIB: &str = include_str!("scaffold/filter/lib.rs.tmpl");
const TESTS: &str = include_str!("scaffold/filter/tests.rs.tmpl");
const FIXTURES: &str = include_str!("scaffold/filter/fixtures.json.tmpl");
const ENVOY: &str = include_str!("scaffold/filter/envoy.yaml.tmpl");
const CASES: &str = include_str!("scaffold/filter/cases.yaml.tmpl");

/// The files of filter `name` in folder `dir`, with the SDK at `sdk` (both relative to the
/// workspace root), by path relative to that root.
pub fn filter_files(name: &str, dir: &Path, sdk: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    check_name(name)?;
    let crate_dir = dir.join(name);
    let sdk_from_crate = relative(&crate_dir, sdk)?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk_from_crate.display().to_string())
            .replace("{{dir}}", &crate_dir.display().to_string())
    };
    Ok(vec![
        (crate_dir.join("Cargo.toml"), fill(CARGO)),
        (crate_dir.join("src/lib.rs"), fill(LIB)),
        (crate_dir.join("src/tests.rs"), fill(TESTS)),
        (crate_dir.join("preflight/fixtures.json"), fill(FIXTURES)),
        (crate_dir.join("envoy.yaml"), fill(ENVOY)),
        (crate_dir.join("cases.yaml"), fill(CASES)),
    ])
}

/// A filter name is a crate name and a header name: lower-case letters, digits and `-`,
/// starting with a letter.
fn check_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{name:?}: a filter name is lower-case letters, digits and '-', starting with a letter"
        )),
    }
}

/// `to` as seen from `from`, both relative paths from the same root without `..`.
fn relative(from: &Path, to: &Path) -> Result<PathBuf, String> {
    let plain = |p: &Path| {
        p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    };
    if !plain(from) || !plain(to) {
        return Err("give --dir and --sdk relative to the workspace root, without '..'".into());
    }
    let (from, to) = (normal_parts(from), normal_parts(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    Ok(out)
}

fn normal_parts(path: &Path) -> Vec<Component<'_>> {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod tests;
