//! Builds the ECDS resource (`TypedExtensionConfig`) for a filter. Pure; with [`crate::compose`]
//! the places domain types become Envoy protobuf.

use std::path::Path;

use envoy_types::pb::envoy::config::core::v3::{
    AsyncDataSource, DataSource, TypedExtensionConfig, async_data_source, data_source,
};
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::wasm::v3::{
    FailurePolicy, PluginConfig, VmConfig, plugin_config,
};
use envoy_types::pb::google::protobuf::StringValue;
use prost::{Message, Name};
use xds::proto::Any;

use meshplug_core::artifact::ArtifactKind;

/// The Envoy Wasm runtime meshplug targets.
pub const WASM_RUNTIME: &str = "envoy.wasm.runtime.v8";

/// What a filter deployment is, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterDeployment<'a> {
    /// The filter and ECDS resource name.
    pub name: &'a str,
    /// The artifact's kind.
    pub kind: ArtifactKind,
    /// The artifact's path in the store, as Envoy will open it.
    pub module_path: &'a Path,
    /// The filter's configuration, handed to it as a JSON string.
    pub config_json: &'a str,
    /// What a proxy does when the filter fails. Wasm only: a dynamic module runs in-process,
    /// and the SDK answers 500 for a panic.
    pub failure_policy: meshplug_core::manifest::FailurePolicy,
}

/// The ECDS resource for a deployment.
pub fn extension_config(deployment: &FilterDeployment<'_>) -> Any {
    let typed_config = match deployment.kind {
        ArtifactKind::Wasm => to_any(&wasm_filter(deployment)),
        ArtifactKind::Native => to_any(&native_filter(deployment)),
    };
    to_any(&TypedExtensionConfig {
        name: deployment.name.to_string(),
        typed_config: Some(typed_config),
    })
}

fn wasm_filter(deployment: &FilterDeployment<'_>) -> Wasm {
    let code = local_file(deployment.module_path);
    let vm = VmConfig {
        vm_id: deployment.name.to_string(),
        runtime: WASM_RUNTIME.to_string(),
        code: Some(code),
        ..Default::default()
    };
    let configuration = StringValue {
        value: deployment.config_json.to_string(),
    };
    Wasm {
        config: Some(PluginConfig {
            name: deployment.name.to_string(),
            vm: Some(plugin_config::Vm::VmConfig(vm)),
            configuration: Some(to_any(&configuration)),
            failure_policy: wasm_failure_policy(deployment.failure_policy) as i32,
            ..Default::default()
        }),
    }
}

fn wasm_failure_policy(policy: meshplug_core::manifest::FailurePolicy) -> FailurePolicy {
    match policy {
        meshplug_core::manifest::FailurePolicy::FailClosed => FailurePolicy::FailClosed,
        meshplug_core::manifest::FailurePolicy::FailOpen => FailurePolicy::FailOpen,
        meshplug_core::manifest::FailurePolicy::Reload => FailurePolicy::FailReload,
    }
}

/// `envoy.extensions.dynamic_modules.v3.DynamicModuleConfig` as Envoy 1.40 has it. envoy-types
/// 0.7.7 predates field 6, `module`, which loads a module from a path; these two messages carry
/// the fields meshplug sets, with Envoy's field numbers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DynamicModuleConfig {
    /// `name` (1): the module's name, for logs.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `module` (6): where the `.so` is.
    #[prost(message, optional, tag = "6")]
    pub module: Option<AsyncDataSource>,
}

/// `envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DynamicModuleFilter {
    /// `dynamic_module_config` (1).
    #[prost(message, optional, tag = "1")]
    pub dynamic_module_config: Option<DynamicModuleConfig>,
    /// `filter_name` (2): handed to the module's `config_new`.
    #[prost(string, tag = "2")]
    pub filter_name: String,
    /// `filter_config` (3): handed to the module's `config_new` (a StringValue arrives as its
    /// bytes).
    #[prost(message, optional, tag = "3")]
    pub filter_config: Option<Any>,
}

impl Name for DynamicModuleFilter {
    const NAME: &'static str = "DynamicModuleFilter";
    const PACKAGE: &'static str = "envoy.extensions.filters.http.dynamic_modules.v3";

    fn type_url() -> String {
        format!("type.googleapis.com/{}", Self::full_name())
    }
}

fn local_file(path: &Path) -> AsyncDataSource {
    AsyncDataSource {
        specifier: Some(async_data_source::Specifier::Local(DataSource {
            specifier: Some(data_source::Specifier::Filename(path.display().to_string())),
            ..Default::default()
        })),
    }
}

fn native_filter(deployment: &FilterDeployment<'_>) -> DynamicModuleFilter {
    DynamicModuleFilter {
        dynamic_module_config: Some(DynamicModuleConfig {
            name: deployment.name.to_string(),
            module: Some(local_file(deployment.module_path)),
        }),
        filter_name: deployment.name.to_string(),
        filter_config: Some(to_any(&StringValue {
            value: deployment.config_json.to_string(),
        })),
    }
}

/// A message packed as `Any` with its type URL.
pub(crate) fn to_any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests;
