//! The `spec` of each manifest kind, as serde reads it, and the checks serde cannot make.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::artifact::ArtifactKind;
use crate::rollout::Policy;

/// What went wrong where: (field path, a text to find its line by, message).
pub(super) type Problem = (String, String, String);

/// `kind: Plugin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSpec {
    /// The artifact: a filter build name (`authz` means `authz.wasm` or `libauthz.so` in the
    /// artifacts folder) or a glob over build names (`authz-*`); the newest match runs. Empty
    /// for a built-in filter (`envoyFilter`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact: String,
    /// Instead of a build: one of Envoy's own HTTP filters, with its configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_filter: Option<super::builtin::EnvoyFilterSpec>,
    /// Which kinds of build it may run.
    #[serde(default)]
    pub kind: KindChoice,
    /// With `kind: any`, the kind it runs when both are there (default: `--prefer-kind`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<ArtifactKind>,
    /// The filter's configuration, a mapping handed to it as JSON (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// The filter's configuration as text, handed to it as written (plain text, YAML…); in
    /// place of `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_text: Option<String>,
    /// Wasm: which root context of the module the plugin runs (`root_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// Wasm: plugins with the same `vmId` (and build) share a VM (default: the plugin's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// Wasm: the VM's own configuration, apart from the plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_config: Option<super::vm::VmConfigSpec>,
    /// Where in the chain: phases run in the order authn, authz, stats, custom (the default:
    /// with `--plugins` alone the bootstrap's slots fix the order, and no phase is needed).
    #[serde(default)]
    pub phase: Phase,
    /// Within a phase, lower runs first; then by name.
    #[serde(default)]
    pub priority: i32,
    /// Which proxies get it; empty selects every proxy.
    #[serde(default)]
    pub targets: Selector,
    /// Which listeners' chains it joins; empty means all.
    #[serde(default)]
    pub listeners: Vec<String>,
    /// The clusters the filter calls (`dispatch_http_call`, gRPC calls): each must be a
    /// `kind: Cluster` manifest, which every proxy is served over CDS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callouts: Vec<String>,
    /// What a proxy does when the filter fails.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// How a new version rolls out (default: the control plane's `--rollout-policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// Pre-flight request fixtures (the `meshplug validate --fixtures` format).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixtures: Vec<meshplug_preflight::Fixture>,
    /// A JSON Schema the configuration must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// Who must sign this plugin's builds (in place of `--trusted-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<Box<SignersSpec>>,
}

/// `spec.signers`: minisign public keys (each the base64 line of a `minisign.pub`), and how
/// many of them must have signed a build (`<file>.minisig`, `<file>.<label>.minisig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignersSpec {
    /// The keys.
    pub keys: Vec<String>,
    /// How many distinct keys must have signed (default 1).
    #[serde(default = "one")]
    pub threshold: usize,
}

fn one() -> usize {
    1
}

impl SignersSpec {
    /// The policy these keys and threshold say, or the field and why not.
    pub fn policy(&self) -> Result<crate::signature::SignerPolicy, (String, String)> {
        let mut keys = Vec::new();
        for (i, text) in self.keys.iter().enumerate() {
            let key = crate::signature::TrustedKey::parse(text)
                .map_err(|e| (format!("spec.signers.keys[{i}]"), e))?;
            keys.push(key);
        }
        if keys.is_empty() || self.threshold == 0 || self.threshold > keys.len() {
            return Err((
                "spec.signers.threshold".into(),
                format!(
                    "must be between 1 and the number of keys ({}), not {}",
                    keys.len(),
                    self.threshold
                ),
            ));
        }
        Ok(crate::signature::SignerPolicy {
            keys,
            threshold: self.threshold,
        })
    }
}

/// Which kinds of build a plugin may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindChoice {
    /// `.wasm` only.
    Wasm,
    /// `.so` only.
    Native,
    /// Either; `prefer` picks when both are there.
    #[default]
    Any,
}

impl KindChoice {
    /// Whether a build of `kind` may run.
    pub fn allows(self, kind: ArtifactKind) -> bool {
        match self {
            Self::Any => true,
            Self::Wasm => kind == ArtifactKind::Wasm,
            Self::Native => kind == ArtifactKind::Native,
        }
    }
}

/// The chain's phases, in the order they run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Authentication.
    Authn,
    /// Authorization.
    Authz,
    /// Statistics and telemetry.
    Stats,
    /// Everything else (the default).
    #[default]
    Custom,
}

/// What a proxy does when the filter fails (Wasm: the VM crashed; any kind: its configuration
/// is missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailurePolicy {
    /// Requests fail (503 from a crashed VM, 500 with no configuration).
    #[default]
    FailClosed,
    /// Requests skip the filter.
    FailOpen,
    /// Wasm: the VM is reloaded (with backoff); requests meanwhile fail.
    Reload,
}

/// Which proxies a plugin reaches. Every part given must match; an empty selector matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    /// Node ids, as globs (`edge-*`); any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ids: Vec<String>,
    /// Node clusters; any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Node metadata labels (string fields of `node.metadata`); all must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Whether a node with this id, cluster and metadata is selected.
    pub fn matches(&self, id: &str, cluster: &str, metadata: &BTreeMap<String, String>) -> bool {
        self.compile().matches(id, cluster, metadata)
    }

    /// The selector with its globs compiled once, for matching many nodes. (Globs that do
    /// not compile were refused when the manifest was read.)
    pub fn compile(&self) -> CompiledSelector {
        CompiledSelector {
            node_ids: self
                .node_ids
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            clusters: self.clusters.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// A [`Selector`] ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledSelector {
    node_ids: Vec<glob::Pattern>,
    clusters: Vec<String>,
    labels: BTreeMap<String, String>,
}

impl CompiledSelector {
    /// Whether a node with this id, cluster and metadata is selected.
    pub fn matches(&self, id: &str, cluster: &str, metadata: &BTreeMap<String, String>) -> bool {
        let id_ok = self.node_ids.is_empty() || self.node_ids.iter().any(|p| p.matches(id));
        let cluster_ok = self.clusters.is_empty() || self.clusters.iter().any(|c| c == cluster);
        let labels_ok = self
            .labels
            .iter()
            .all(|(key, value)| metadata.get(key) == Some(value));
        id_ok && cluster_ok && labels_ok
    }
}

/// A plugin's rollout: `immediate`, or a policy (the `--rollout-policy` JSON, as YAML).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RolloutSpec {
    /// Everything at once, gated only by acceptance.
    Immediate,
    /// Steps, bake and thresholds.
    Policy(Box<Policy>),
}

impl<'de> Deserialize<'de> for RolloutSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RolloutVisitor;
        impl<'de> Visitor<'de> for RolloutVisitor {
            type Value = RolloutSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`immediate` or a rollout policy (steps, bake, ...)")
            }
            fn visit_str<E: de::Error>(self, word: &str) -> Result<RolloutSpec, E> {
                match word {
                    "immediate" => Ok(RolloutSpec::Immediate),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RolloutSpec, A::Error> {
                let policy = Policy::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RolloutSpec::Policy(Box::new(policy)))
            }
        }
        deserializer.deserialize_any(RolloutVisitor)
    }
}

/// `kind: Listener`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerSpec {
    /// The IP address to bind.
    #[serde(default = "loopback")]
    pub address: String,
    /// The port; 0 lets each proxy pick one.
    pub port: u16,
    /// Routes, first match wins.
    pub routes: Vec<RouteSpec>,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

/// One route of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteSpec {
    /// The path prefix it matches.
    #[serde(default = "slash")]
    pub prefix: String,
    /// The cluster it forwards to. Exactly one of `cluster` and `directResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// A fixed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponse>,
    /// Upstream timeout (default Envoy's 15 s).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

fn slash() -> String {
    "/".into()
}

/// A route's fixed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    #[serde(default)]
    pub body: String,
}

/// `kind: Cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Endpoints as `IP:port`.
    pub endpoints: Vec<String>,
    /// Connect timeout.
    #[serde(default = "one_second", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

impl ClusterSpec {
    /// The endpoints, parsed (checked at load, so none is dropped here).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.endpoints
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect()
    }

    pub(super) fn problem(&self) -> Option<Problem> {
        if self.endpoints.is_empty() {
            return Some(problem(
                "spec.endpoints",
                "endpoints",
                "at least one endpoint",
            ));
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            if endpoint.parse::<SocketAddr>().is_err() {
                return Some((
                    format!("spec.endpoints[{i}]"),
                    endpoint.clone(),
                    format!("`{endpoint}` is not IP:port"),
                ));
            }
        }
        None
    }
}

impl ListenerSpec {
    pub(super) fn problem(&self) -> Option<Problem> {
        if self.address.parse::<IpAddr>().is_err() {
            let message = format!("`{}` is not an IP address", self.address);
            return Some(("spec.address".into(), self.address.clone(), message));
        }
        if self.routes.is_empty() {
            return Some(problem("spec.routes", "routes", "at least one route"));
        }
        for (i, route) in self.routes.iter().enumerate() {
            let field = format!("spec.routes[{i}]");
            if !route.prefix.starts_with('/') {
                let message = format!("`{}` must start with /", route.prefix);
                return Some((format!("{field}.prefix"), route.prefix.clone(), message));
            }
            match (&route.cluster, &route.direct_response) {
                (Some(_), None) => {}
                (None, Some(direct)) if (200..=599).contains(&direct.status) => {}
                (None, Some(direct)) => {
                    let message = format!("{} is not an HTTP status", direct.status);
                    let needle = direct.status.to_string();
                    return Some((format!("{field}.directResponse.status"), needle, message));
                }
                _ => {
                    let message = "give exactly one of cluster and directResponse".to_string();
                    return Some((field, route.prefix.clone(), message));
                }
            }
        }
        None
    }

    /// The clusters its routes name.
    pub fn clusters(&self) -> impl Iterator<Item = (usize, &str)> {
        self.routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.cluster.as_deref().map(|c| (i, c)))
    }
}

impl PluginSpec {
    /// What its Wasm VM is started with.
    pub fn vm_settings(&self) -> super::vm::VmSettings {
        super::vm::VmSettings {
            root_id: self.root_id.clone(),
            vm_id: self.vm_id.clone(),
            configuration: self
                .vm_config
                .as_ref()
                .and_then(super::vm::VmConfigSpec::configuration),
        }
    }

    /// The configuration the filter gets: `configText` as written, else `config` as JSON,
    /// else `{}`.
    pub fn configuration(&self) -> String {
        self.config_fields().value().unwrap_or_else(|| "{}".into())
    }

    fn config_fields(&self) -> super::config_fields::ConfigFields<'_> {
        super::config_fields::ConfigFields {
            mapping: self.config.as_ref(),
            text: self.config_text.as_ref(),
            at: "spec",
            keys: ("config", "configText"),
            receiver: "filter",
        }
    }

    pub(super) fn problem(&self) -> Option<Problem> {
        if let Some(builtin) = &self.envoy_filter {
            return super::builtin::plugin_problem(self, builtin);
        }
        let artifact = &self.artifact;
        if artifact.is_empty() {
            let message = "give `artifact` (a build) or `envoyFilter` (one of Envoy's filters)";
            return Some(problem("spec", "spec:", message));
        }
        if let Err(err) = glob::Pattern::new(artifact) {
            let message = format!("`{artifact}` is not a name or glob: {err}");
            return Some(("spec.artifact".into(), artifact.clone(), message));
        }
        let plain = artifact.replace(['*', '?', '[', ']', '!'], "");
        if plain.contains('/') || plain.contains('.') {
            let message = format!(
                "`{artifact}`: give the build's name (`authz` for authz.wasm and libauthz.so), not a path"
            );
            return Some(("spec.artifact".into(), artifact.clone(), message));
        }
        if let (Some(prefer), false) = (self.prefer, self.kind == KindChoice::Any) {
            let message = format!("`prefer: {prefer:?}` needs `kind: any`").to_lowercase();
            return Some(("spec.prefer".into(), "prefer".into(), message));
        }
        if let Some(problem) = self.config_fields().problem() {
            return Some(problem);
        }
        if let Some(problem) = self.vm_config.as_ref().and_then(|vm| vm.problem()) {
            return Some(problem);
        }
        if self.vm_id.as_deref().is_some_and(str::is_empty) {
            return Some(problem("spec.vmId", "vmId", "must not be empty"));
        }
        for (i, pattern) in self.targets.node_ids.iter().enumerate() {
            if let Err(err) = glob::Pattern::new(pattern) {
                let message = format!("`{pattern}` is not a glob: {err}");
                return Some((
                    format!("spec.targets.nodeIds[{i}]"),
                    pattern.clone(),
                    message,
                ));
            }
        }
        if let Some(Err((field, message))) = self.signers.as_deref().map(SignersSpec::policy) {
            return Some((field, "signers".into(), message));
        }
        if let Some(RolloutSpec::Policy(policy)) = &self.rollout
            && let Err(message) = policy.validate()
        {
            let (field, rest) = message.split_once(": ").unwrap_or(("", &message));
            let path = format!("spec.rollout.{field}");
            let needle = field.split(['[', '.']).next().unwrap_or(field).to_string();
            return Some((path, needle, rest.to_string()));
        }
        None
    }
}

fn problem(field: &str, needle: &str, message: &str) -> Problem {
    (field.into(), needle.into(), message.into())
}
