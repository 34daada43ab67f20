//! `spec.envoyFilter`: a plugin that is one of Envoy's own HTTP filters (Lua, RBAC,
//! ext_authz, jwt_authn…) instead of a build, with its configuration as protobuf JSON. It sits
//! in the chain by phase and priority like any plugin, and rolls out like one: a change is a
//! new version, a NACK rolls it back. The runtime checks it with Envoy's `--mode validate`
//! before any push.

use serde::{Deserialize, Serialize};

use super::spec::{PluginSpec, Problem};

/// The prefix every Envoy HTTP filter's type URL has.
pub const HTTP_FILTER_TYPES: &str = "type.googleapis.com/envoy.extensions.filters.http.";

/// Filter types a plugin cannot be as a built-in: builds (give `artifact`), and the router,
/// which meshplug places last itself.
const NOT_BUILTIN: [(&str, &str); 3] = [
    ("wasm.v3.Wasm", "a Wasm filter is a build: give `artifact`"),
    (
        "dynamic_modules.v3.DynamicModuleFilter",
        "a dynamic module is a build: give `artifact`",
    ),
    (
        "router.v3.Router",
        "the router ends every chain already; it is not a plugin",
    ),
];

/// `spec.envoyFilter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvoyFilterSpec {
    /// The filter's type URL, `type.googleapis.com/envoy.extensions.filters.http.<…>`.
    pub type_url: String,
    /// Its configuration, a mapping in protobuf JSON (field names as in Envoy's API docs).
    #[serde(default = "empty_mapping")]
    pub config: serde_json::Value,
}

fn empty_mapping() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl EnvoyFilterSpec {
    /// The filter's typed config as protobuf JSON: its configuration with `@type` first.
    /// What the release carries, the ECDS resource is built from and Envoy validates.
    pub fn typed_config_json(&self) -> String {
        let mut fields = serde_json::Map::new();
        fields.insert("@type".into(), self.type_url.clone().into());
        if let serde_json::Value::Object(config) = &self.config {
            fields.extend(config.clone());
        }
        serde_json::Value::Object(fields).to_string()
    }

    pub(super) fn problem(&self) -> Option<Problem> {
        let at = "spec.envoyFilter";
        let Some(kind) = self.type_url.strip_prefix(HTTP_FILTER_TYPES) else {
            let message = format!(
                "`{}` is not an Envoy HTTP filter type ({HTTP_FILTER_TYPES}…)",
                self.type_url
            );
            return Some((format!("{at}.typeUrl"), "typeUrl".into(), message));
        };
        if let Some((_, why)) = NOT_BUILTIN.iter().find(|(suffix, _)| *suffix == kind) {
            return Some((format!("{at}.typeUrl"), "typeUrl".into(), why.to_string()));
        }
        if !self.config.is_object() {
            let message = "must be a mapping (the filter's protobuf JSON)".to_string();
            return Some((format!("{at}.config"), "config:".into(), message));
        }
        if self.config.get("@type").is_some() {
            let message = "give the type as `typeUrl`, not `@type`".to_string();
            return Some((format!("{at}.config"), "config:".into(), message));
        }
        None
    }
}

/// Why a plugin with `spec.envoyFilter` is refused: a field only a build takes, or the filter.
pub(super) fn plugin_problem(spec: &PluginSpec, builtin: &EnvoyFilterSpec) -> Option<Problem> {
    let build_only = [
        ("artifact", !spec.artifact.is_empty()),
        ("config", spec.config.is_some()),
        ("configText", spec.config_text.is_some()),
        ("rootId", spec.root_id.is_some()),
        ("vmId", spec.vm_id.is_some()),
        ("vmConfig", spec.vm_config.is_some()),
        ("fixtures", !spec.fixtures.is_empty()),
        ("schema", spec.schema.is_some()),
        ("signers", spec.signers.is_some()),
        ("callouts", !spec.callouts.is_empty()),
    ];
    if let Some((key, _)) = build_only.iter().find(|(_, given)| *given) {
        let message = format!(
            "`{key}` is for a build; a built-in filter (`envoyFilter`) is configured by \
             `envoyFilter.config`"
        );
        return Some((format!("spec.{key}"), format!("{key}:"), message));
    }
    builtin.problem()
}

#[cfg(test)]
mod tests;
