//! Builds the ECDS resource (`TypedExtensionConfig`) for a filter. Pure; with [`crate::compose`]
//! the places domain types become Envoy protobuf.
//!
//! A module comes from a local path (a proxy on the control plane's disk) or from the
//! artifact service ([`ModuleSource::Remote`]: Envoy's remote data source with the sha256 and
//! the NACK-on-cache-miss flag, so that an Envoy reading it itself never ACKs a module it did
//! not load). `meshplug agent` reads such a resource with [`remote_module`] and hands its proxy
//! [`with_local_module`] instead, once it holds the verified bytes; see `localize`.

use std::path::Path;

use envoy_types::pb::envoy::config::core::v3::{
    AsyncDataSource, DataSource, HttpUri, RemoteDataSource, TypedExtensionConfig,
    async_data_source, data_source, http_uri,
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

/// The Envoy cluster a remote module's `http_uri` names (an Envoy fetching by itself needs
/// it in its bootstrap; behind `meshplug agent` it is never used).
pub const ARTIFACTS_CLUSTER: &str = "meshplug_artifacts";

/// Where a proxy gets a module from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource<'a> {
    /// A path on the proxy's own disk.
    Local(&'a Path),
    /// An HTTP URL and the sha256 the bytes must have.
    Remote {
        /// `http://…/artifacts/<sha256>.<ext>`.
        uri: &'a str,
        /// Hex sha256 of the module.
        sha256: &'a str,
    },
}

/// What a filter deployment is, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterDeployment<'a> {
    /// The filter and ECDS resource name.
    pub name: &'a str,
    /// The artifact's kind.
    pub kind: ArtifactKind,
    /// Where the proxy gets the module.
    pub module: ModuleSource<'a>,
    /// The filter's configuration, handed to it as a JSON string.
    pub config_json: &'a str,
    /// What a proxy does when the filter fails. Wasm only: a dynamic module runs in-process,
    /// and the SDK answers 500 for a panic.
    pub failure_policy: meshplug_core::manifest::FailurePolicy,
    /// What the Wasm VM is started with (root id, VM id, VM configuration). Wasm only.
    pub vm: &'a meshplug_core::manifest::VmSettings,
}

/// The ECDS resource for a deployment.
pub fn extension_config(deployment: &FilterDeployment<'_>) -> Any {
    let typed_config = match deployment.kind {
        ArtifactKind::Wasm => to_any(&wasm_filter(deployment)),
        ArtifactKind::Native => to_any(&native_filter(deployment)),
        // Checked before any push (`meshplug::builtin`); an unreadable one is an empty struct
        // that Envoy refuses, never a panic here.
        ArtifactKind::Builtin => {
            builtin::builtin_config(deployment.config_json).unwrap_or_else(|_| Any {
                type_url: builtin::TYPED_STRUCT.into(),
                value: Vec::new(),
            })
        }
    };
    to_any(&TypedExtensionConfig {
        name: deployment.name.to_string(),
        typed_config: Some(typed_config),
    })
}

fn wasm_filter(deployment: &FilterDeployment<'_>) -> Wasm {
    let settings = deployment.vm;
    let vm = VmConfig {
        vm_id: settings
            .vm_id
            .clone()
            .unwrap_or_else(|| deployment.name.to_string()),
        runtime: WASM_RUNTIME.to_string(),
        code: Some(data_source(deployment.module)),
        nack_on_code_cache_miss: matches!(deployment.module, ModuleSource::Remote { .. }),
        configuration: settings.configuration.as_ref().map(|value| {
            to_any(&StringValue {
                value: value.clone(),
            })
        }),
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
            root_id: settings.root_id.clone().unwrap_or_default(),
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
    /// `nack_on_cache_miss` (7): a remote module not in Envoy's cache is NACKed (and fetched in
    /// the background) instead of silently left out.
    #[prost(bool, tag = "7")]
    pub nack_on_cache_miss: bool,
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

fn data_source(source: ModuleSource<'_>) -> AsyncDataSource {
    match source {
        ModuleSource::Local(path) => local_file(path),
        ModuleSource::Remote { uri, sha256 } => AsyncDataSource {
            specifier: Some(async_data_source::Specifier::Remote(RemoteDataSource {
                http_uri: Some(HttpUri {
                    uri: uri.to_string(),
                    timeout: Some(envoy_types::pb::google::protobuf::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                    http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(
                        ARTIFACTS_CLUSTER.to_string(),
                    )),
                }),
                sha256: sha256.to_string(),
                retry_policy: None,
            })),
        },
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
            module: Some(data_source(deployment.module)),
            nack_on_cache_miss: matches!(deployment.module, ModuleSource::Remote { .. }),
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

mod builtin;
pub use builtin::{TYPED_STRUCT, builtin_config, builtin_type_url};
mod localize;
pub use localize::{RemoteModule, remote_module, with_local_module};

#[cfg(test)]
mod tests;
