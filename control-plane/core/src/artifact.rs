//! What a file in the artifacts folder is, from its name alone.

use std::path::Path;

/// The shapes a filter ships in: two builds, and Envoy's own filters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A proxy-wasm module, `<name>.wasm`.
    Wasm,
    /// An Envoy dynamic module, `lib<name>.so`.
    Native,
    /// An Envoy built-in HTTP filter (`spec.envoyFilter`): no file; the release's
    /// configuration is the filter's typed config as protobuf JSON with its `@type`.
    Builtin,
}

impl ArtifactKind {
    /// The file extension the store uses for this kind.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Native => "so",
            // Never stored: nothing has this extension in the store or the artifact service.
            Self::Builtin => "builtin",
        }
    }
}

/// A file the control plane acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchedFile {
    /// A filter build for filter `name`.
    Artifact {
        /// The filter (and ECDS resource) name.
        name: String,
        /// Its kind.
        kind: ArtifactKind,
    },
    /// The configuration of filter `name`: `<name>.json` (JSON) or `<name>.config` (as written).
    Config {
        /// The filter name.
        name: String,
        /// How it is read.
        shape: crate::config_shape::ConfigShape,
    },
    /// The pre-flight fixtures of filter `name` (`<name>.fixtures.json`).
    Fixtures {
        /// The filter name.
        name: String,
    },
    /// The JSON Schema of filter `name`'s configuration (`<name>.schema.json`).
    Schema {
        /// The filter name.
        name: String,
    },
    /// A detached minisign signature of a build (`<build file>.minisig`): its arrival makes
    /// the build be looked at again.
    Signature {
        /// The filter name.
        name: String,
        /// The build's file name.
        build: String,
    },
}

impl WatchedFile {
    /// The filter the file belongs to.
    pub fn name(&self) -> &str {
        match self {
            Self::Artifact { name, .. }
            | Self::Config { name, .. }
            | Self::Fixtures { name }
            | Self::Schema { name }
            | Self::Signature { name, .. } => name,
        }
    }
}

/// Classifies a path by its file name. Temp files, hidden files and names that are not a valid
/// filter name give `None`: they are never read.
pub fn classify(path: &Path) -> Option<WatchedFile> {
    let file_name = path.file_name()?.to_str()?;
    if is_temporary(file_name) {
        return None;
    }
    if let Some(signed) = file_name.strip_suffix(".minisig") {
        // `<file>.minisig`, or `<file>.<label>.minisig` for one more signer.
        let build = match classify(&path.with_file_name(signed)) {
            Some(WatchedFile::Artifact { .. }) => signed,
            _ => signed.rsplit_once('.').map_or(signed, |(build, _)| build),
        };
        return match classify(&path.with_file_name(build))? {
            WatchedFile::Artifact { name, .. } => Some(WatchedFile::Signature {
                name,
                build: build.to_string(),
            }),
            _ => None,
        };
    }
    if let Some(name) = file_name
        .strip_suffix(".fixtures.json")
        .filter(|n| is_filter_name(n))
    {
        return Some(WatchedFile::Fixtures { name: name.into() });
    }
    if let Some(name) = file_name
        .strip_suffix(".schema.json")
        .filter(|n| is_filter_name(n))
    {
        return Some(WatchedFile::Schema { name: name.into() });
    }
    if let Some(name) = file_name
        .strip_prefix("lib")
        .and_then(|rest| rest.strip_suffix(".so"))
        .filter(|n| is_filter_name(n))
    {
        return Some(WatchedFile::Artifact {
            name: name.into(),
            kind: ArtifactKind::Native,
        });
    }
    let (stem, extension) = file_name.rsplit_once('.')?;
    if !is_filter_name(stem) {
        return None;
    }
    let name = stem.to_string();
    match extension {
        "wasm" => Some(WatchedFile::Artifact {
            name,
            kind: ArtifactKind::Wasm,
        }),
        "json" => Some(WatchedFile::Config {
            name,
            shape: crate::config_shape::ConfigShape::Json,
        }),
        "config" => Some(WatchedFile::Config {
            name,
            shape: crate::config_shape::ConfigShape::Text,
        }),
        _ => None,
    }
}

/// Why a path that [`classify`] gives `None` for is not acted on, for the log.
pub fn ignored_reason(path: &Path) -> String {
    let Some(file_name) = path.file_name() else {
        return "no file name".into();
    };
    let Some(file_name) = file_name.to_str() else {
        return "the file name is not UTF-8".into();
    };
    if is_temporary(file_name) {
        return "a hidden, backup or partial file (a build in progress)".into();
    }
    if file_name.ends_with(".yaml") || file_name.ends_with(".yml") {
        return "a manifest, not a build (in folder mode the manifest watcher reads `kind: Cluster` manifests here)".into();
    }
    let stem = ["lib", ""].iter().find_map(|prefix| {
        let rest = file_name.strip_prefix(prefix)?;
        [
            ".fixtures.json",
            ".schema.json",
            ".wasm",
            ".json",
            ".config",
            ".so",
        ]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))
        .filter(|_| !(prefix.is_empty() && file_name.ends_with(".so")))
    });
    match stem {
        Some(stem) => format!(
            "{stem:?} is not a filter name (1 to 63 of a-z, 0-9, '-', '_', starting with a letter)"
        ),
        None if file_name.ends_with(".so") => "a dynamic module must be named lib<name>.so".into(),
        None => "not <name>.wasm, lib<name>.so, <name>.json, <name>.config, \
                 <name>.fixtures.json or <name>.schema.json"
            .into(),
    }
}

/// Editors' and copiers' scratch files: hidden, backup, or partial-download names.
fn is_temporary(file_name: &str) -> bool {
    const SUFFIXES: [&str; 7] = [
        "~",
        ".tmp",
        ".part",
        ".partial",
        ".swp",
        ".swx",
        ".crdownload",
    ];
    file_name.starts_with('.')
        || file_name.starts_with('#')
        || file_name.contains(".tmp.")
        || SUFFIXES.iter().any(|suffix| file_name.ends_with(suffix))
}

/// A filter name: 1 to 63 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter. The
/// name becomes an ECDS resource name and a stats prefix, so it is kept plain.
pub fn is_filter_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests;
