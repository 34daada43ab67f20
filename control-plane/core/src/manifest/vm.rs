//! The Wasm VM a plugin runs in, as a manifest says it: its root id, its VM id (plugins with
//! the same VM id and code share a VM) and the VM's own configuration, apart from the
//! plugin's. Envoy's `PluginConfig.root_id`, `VmConfig.vm_id` and `VmConfig.configuration`.

use serde::{Deserialize, Serialize};

use super::config_fields::ConfigFields;
use super::spec::Problem;

/// `spec.vmConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VmConfigSpec {
    /// The VM's configuration, a mapping handed to `on_vm_start` as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
    /// Or as text, handed over as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_text: Option<String>,
}

impl VmConfigSpec {
    /// The configuration the VM gets, if any.
    pub fn configuration(&self) -> Option<String> {
        self.fields().value()
    }

    pub(super) fn problem(&self) -> Option<Problem> {
        self.fields().problem()
    }

    fn fields(&self) -> ConfigFields<'_> {
        ConfigFields {
            mapping: self.configuration.as_ref(),
            text: self.configuration_text.as_ref(),
            at: "spec.vmConfig",
            keys: ("configuration", "configurationText"),
            receiver: "VM",
        }
    }
}

/// What a plugin's VM is started with; all empty: Envoy's defaults (the root id empty, the VM
/// id the plugin's name, no VM configuration). Part of a release: a change is a new version.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmSettings {
    /// `root_id`: which root context of a module that has several the plugin runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// `vm_id`: plugins with the same one (and the same code) share one VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// The VM's configuration, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
}

impl VmSettings {
    /// Whether every setting is Envoy's default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// A line per setting given, for the settings' digest (empty for the defaults, so a
    /// plugin without VM settings keeps its version labels).
    pub fn digest_lines(&self) -> String {
        let mut lines = String::new();
        for (key, value) in [
            ("rootId", &self.root_id),
            ("vmId", &self.vm_id),
            ("vmConfiguration", &self.configuration),
        ] {
            if let Some(value) = value {
                lines.push_str(&format!("\n{key}: {}", serde_json::json!(value)));
            }
        }
        lines
    }
}
