use std::path::PathBuf;

use super::*;

#[test]
fn wasm_deployment_becomes_a_wasm_filter_reading_the_stored_module() {
    let path = PathBuf::from("/data/store/abc.wasm");
    let any = extension_config(&FilterDeployment {
        name: "authz",
        kind: ArtifactKind::Wasm,
        module_path: &path,
        config_json: r#"{"api_keys":["k"]}"#,
    });
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    );
    let tec = TypedExtensionConfig::decode(any.value.as_slice()).expect("decodes");
    assert_eq!(tec.name, "authz");
    let typed = tec.typed_config.expect("typed config");
    assert_eq!(
        typed.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    let wasm = Wasm::decode(typed.value.as_slice()).expect("decodes");
    let plugin = wasm.config.expect("plugin config");
    assert_eq!(plugin.failure_policy, FailurePolicy::FailClosed as i32);
    let Some(plugin_config::Vm::VmConfig(vm)) = plugin.vm else {
        panic!("vm config expected");
    };
    assert_eq!(vm.runtime, WASM_RUNTIME);
    let filename = vm.code.and_then(|c| c.specifier).and_then(|s| match s {
        async_data_source::Specifier::Local(d) => d.specifier,
        async_data_source::Specifier::Remote(_) => None,
    });
    assert_eq!(
        filename,
        Some(data_source::Specifier::Filename(
            "/data/store/abc.wasm".into()
        ))
    );
    let config = plugin.configuration.expect("configuration");
    let value = StringValue::decode(config.value.as_slice()).expect("string value");
    assert_eq!(value.value, r#"{"api_keys":["k"]}"#);
}

#[test]
fn the_same_deployment_encodes_identically() {
    let path = PathBuf::from("/s/x.wasm");
    let deployment = FilterDeployment {
        name: "a",
        kind: ArtifactKind::Wasm,
        module_path: &path,
        config_json: "{}",
    };
    assert_eq!(extension_config(&deployment), extension_config(&deployment));
}
