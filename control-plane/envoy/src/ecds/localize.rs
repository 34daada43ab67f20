//! The agent's side of remote delivery: find the remote module an ECDS resource names, and
//! rewrite the resource to load a local copy instead. Decoded and encoded with envoy-types'
//! own messages, so every field the control plane set survives the rewrite.

use std::path::Path;

use envoy_types::pb::envoy::config::core::v3::{
    AsyncDataSource, DataSource, TypedExtensionConfig, async_data_source, data_source,
};
use envoy_types::pb::envoy::extensions::filters::http::dynamic_modules::v3::DynamicModuleFilter;
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::wasm::v3::{VmConfig, plugin_config};
use prost::{Message, Name};
use xds::proto::Any;

use meshplug_core::artifact::ArtifactKind;

use super::to_any;
use crate::Error;

/// A module an ECDS resource asks the proxy to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteModule {
    /// The filter (resource) name.
    pub filter: String,
    /// Where it is served.
    pub uri: String,
    /// The sha256 its bytes must have (lower-case hex).
    pub sha256: String,
    /// `.wasm` or `.so`.
    pub kind: ArtifactKind,
}

/// The remote module `resource` (a `TypedExtensionConfig`) loads, or `None` when it loads a
/// local file or is not a Wasm or dynamic-module filter.
pub fn remote_module(resource: &Any) -> Result<Option<RemoteModule>, Error> {
    let config = decode::<TypedExtensionConfig>(resource)?;
    let Some(typed) = &config.typed_config else {
        return Ok(None);
    };
    let (source, kind) = if typed.type_url == Wasm::type_url() {
        let wasm = decode::<Wasm>(typed)?;
        (
            wasm_vm(&wasm).and_then(|vm| vm.code.clone()),
            ArtifactKind::Wasm,
        )
    } else if typed.type_url == DynamicModuleFilter::type_url() {
        let filter = decode::<DynamicModuleFilter>(typed)?;
        let module = filter.dynamic_module_config.and_then(|c| c.module);
        (module, ArtifactKind::Native)
    } else {
        return Ok(None);
    };
    let Some(async_data_source::Specifier::Remote(remote)) = source.and_then(|s| s.specifier)
    else {
        return Ok(None);
    };
    let uri = remote.http_uri.map(|u| u.uri).unwrap_or_default();
    let sha256 = remote.sha256.to_ascii_lowercase();
    if uri.is_empty() || !is_sha256(&sha256) {
        return Err(Error::BadRemoteModule(format!(
            "filter {}: a remote module needs a URI and a sha256 (got {uri:?}, {sha256:?})",
            config.name
        )));
    }
    Ok(Some(RemoteModule {
        filter: config.name,
        uri,
        sha256,
        kind,
    }))
}

/// `resource` with its remote module replaced by the local file `path` (and the cache-miss
/// flag off: a local file has no cache).
pub fn with_local_module(resource: &Any, path: &Path) -> Result<Any, Error> {
    let mut config = decode::<TypedExtensionConfig>(resource)?;
    let Some(typed) = config.typed_config.take() else {
        return Ok(resource.clone());
    };
    let local = AsyncDataSource {
        specifier: Some(async_data_source::Specifier::Local(DataSource {
            specifier: Some(data_source::Specifier::Filename(path.display().to_string())),
            ..Default::default()
        })),
    };
    let typed = if typed.type_url == Wasm::type_url() {
        let mut wasm = decode::<Wasm>(&typed)?;
        if let Some(vm) = wasm_vm_mut(&mut wasm) {
            vm.code = Some(local);
            vm.nack_on_code_cache_miss = false;
        }
        to_any(&wasm)
    } else if typed.type_url == DynamicModuleFilter::type_url() {
        let mut filter = decode::<DynamicModuleFilter>(&typed)?;
        if let Some(module_config) = filter.dynamic_module_config.as_mut() {
            module_config.module = Some(local);
            module_config.nack_on_cache_miss = false;
        }
        to_any(&filter)
    } else {
        typed
    };
    config.typed_config = Some(typed);
    Ok(to_any(&config))
}

fn wasm_vm(wasm: &Wasm) -> Option<&VmConfig> {
    match wasm.config.as_ref()?.vm.as_ref()? {
        plugin_config::Vm::VmConfig(vm) => Some(vm),
    }
}

fn wasm_vm_mut(wasm: &mut Wasm) -> Option<&mut VmConfig> {
    match wasm.config.as_mut()?.vm.as_mut()? {
        plugin_config::Vm::VmConfig(vm) => Some(vm),
    }
}

fn decode<M: Message + Name + Default>(any: &Any) -> Result<M, Error> {
    M::decode(any.value.as_slice())
        .map_err(|e| Error::BadRemoteModule(format!("{}: {e}", M::full_name())))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
