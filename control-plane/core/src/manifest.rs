//! Manifests: the YAML documents in the watched `plugins/` and `mesh/` folders, in the style
//! of Kubernetes resources (`apiVersion: meshplug.dev/v1alpha1`, `kind`, `metadata.name`,
//! `spec`). Pure: text in, a typed [`Manifest`] or a [`ManifestError`] naming file, line and
//! field out.
//!
//! Three kinds: `Plugin` (a filter: its artifact, configuration, place in the chain, targets,
//! failure and rollout policy, pre-flight fixtures), `Listener` (a port with routes) and
//! `Cluster` (upstream endpoints).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::artifact::ArtifactKind;
use crate::rollout::Policy;

mod builtin;
pub use builtin::{EnvoyFilterSpec, HTTP_FILTER_TYPES};
mod config_fields;
pub mod shape;
mod spec;
mod vm;

pub use spec::{
    ClusterSpec, CompiledSelector, DirectResponse, FailurePolicy, KindChoice, ListenerSpec, Phase,
    PluginSpec, RolloutSpec, RouteSpec, Selector,
};
pub use vm::{VmConfigSpec, VmSettings};

/// The only `apiVersion` understood.
pub const API_VERSION: &str = "meshplug.dev/v1alpha1";

/// One parsed and checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A filter (boxed: its spec is several times the others').
    Plugin(Box<Named<PluginSpec>>),
    /// A listener and its routes.
    Listener(Named<ListenerSpec>),
    /// An upstream cluster.
    Cluster(Named<ClusterSpec>),
}

/// A manifest's name and labels, with its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<S> {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec`.
    pub spec: S,
}

/// What kind of manifest, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ManifestKind {
    /// `kind: Plugin`.
    Plugin,
    /// `kind: Listener`.
    Listener,
    /// `kind: Cluster`.
    Cluster,
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plugin => "Plugin",
            Self::Listener => "Listener",
            Self::Cluster => "Cluster",
        })
    }
}

impl Manifest {
    /// Its kind.
    pub fn kind(&self) -> ManifestKind {
        match self {
            Self::Plugin(_) => ManifestKind::Plugin,
            Self::Listener(_) => ManifestKind::Listener,
            Self::Cluster(_) => ManifestKind::Cluster,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        match self {
            Self::Plugin(m) => &m.name,
            Self::Listener(m) => &m.name,
            Self::Cluster(m) => &m.name,
        }
    }
}

/// Why a manifest was refused: the file, where in it, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestError {
    /// The file, as given to [`parse`].
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path (`spec.phase`, `spec.routes[1].cluster`); empty for the document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    /// An error at `field`, located at the first line of `text` that mentions `needle`.
    pub fn at_value(file: &str, text: &str, field: &str, needle: &str, message: String) -> Self {
        // A line where the needle starts (a key, or a list item) first: a name or value that
        // merely contains the word (`name: http-config`) is not the field.
        let starts = |line: &str| {
            let line = line.trim_start();
            line.strip_prefix("- ").unwrap_or(line).starts_with(needle)
        };
        let lines = || text.lines().enumerate().filter(|_| !needle.is_empty());
        let line = lines()
            .find(|(_, line)| starts(line))
            .or_else(|| lines().find(|(_, line)| line.contains(needle)))
            .map(|(i, _)| i + 1);
        Self {
            file: file.to_string(),
            line,
            column: None,
            field: field.to_string(),
            message,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    api_version: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document<S> {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: Metadata,
    spec: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
}

/// Parses one manifest file. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    shape::check_shape(file, text)?;
    let head: Head = deserialize(file, text)?;
    let whole = |field: &str, message: String| ManifestError {
        file: file.to_string(),
        line: Some(1),
        column: None,
        field: field.to_string(),
        message,
    };
    match head.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            let message = format!("unsupported `{other}`, expected `{API_VERSION}`");
            return Err(ManifestError::at_value(
                file,
                text,
                "apiVersion",
                "apiVersion",
                message,
            ));
        }
        None => return Err(whole("apiVersion", format!("missing; use `{API_VERSION}`"))),
    }
    let manifest = match head.kind.as_deref() {
        Some("Plugin") => Manifest::Plugin(Box::new(named(file, text)?)),
        Some("Listener") => Manifest::Listener(named(file, text)?),
        Some("Cluster") => Manifest::Cluster(named(file, text)?),
        Some(other) => {
            let message = format!("unknown kind `{other}`, expected Plugin, Listener or Cluster");
            return Err(ManifestError::at_value(file, text, "kind", "kind", message));
        }
        None => return Err(whole("kind", "missing".into())),
    };
    check(file, text, &manifest)?;
    Ok(manifest)
}

fn named<S: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<Named<S>, ManifestError> {
    let document: Document<S> = deserialize(file, text)?;
    Ok(Named {
        name: document.metadata.name,
        labels: document.metadata.labels,
        spec: document.spec,
    })
}

fn deserialize<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ManifestError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        // The YAML error repeats the path in front and the location behind; both are fields.
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        if let Some((head, rest)) = message.split_once(": ")
            && field.starts_with(head)
        {
            message = rest.to_string();
        }
        ManifestError {
            file: file.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            field: if field == "." { String::new() } else { field },
            message,
        }
    })
}

/// Checks what serde cannot: names, exclusive fields, ranges, a rollout policy's rules.
fn check(file: &str, text: &str, manifest: &Manifest) -> Result<(), ManifestError> {
    let name = manifest.name();
    if let Err(message) = check_name(name) {
        return Err(ManifestError::at_value(
            file,
            text,
            "metadata.name",
            "name:",
            message,
        ));
    }
    let problem = match manifest {
        Manifest::Plugin(plugin) => plugin.spec.problem(),
        Manifest::Listener(listener) => listener.spec.problem(),
        Manifest::Cluster(cluster) => cluster.spec.problem(),
    };
    match problem {
        None => Ok(()),
        Some((field, needle, message)) => Err(ManifestError::at_value(
            file, text, &field, &needle, message,
        )),
    }
}

/// A name is 1 to 63 lower-case letters, digits, `-` and `_`, starting with a letter or digit:
/// it becomes an ECDS resource name, a stat prefix and part of file names.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: 1 to 63 of a-z, 0-9, `-`, `_`, starting with a letter or digit"
        ))
    }
}

/// The artifact kind a plugin runs, given what it allows, what it prefers and the default.
pub fn preferred_kind(spec: &PluginSpec, default: ArtifactKind) -> ArtifactKind {
    match spec.kind {
        KindChoice::Wasm => ArtifactKind::Wasm,
        KindChoice::Native => ArtifactKind::Native,
        KindChoice::Any => spec.prefer.unwrap_or(default),
    }
}

/// The rollout policy of a plugin, given the control plane's default.
pub fn rollout_policy(spec: &PluginSpec, default: &Policy) -> Policy {
    match &spec.rollout {
        None => default.clone(),
        Some(RolloutSpec::Immediate) => Policy::immediate(),
        Some(RolloutSpec::Policy(policy)) => (**policy).clone(),
    }
}

#[cfg(test)]
mod tests;
