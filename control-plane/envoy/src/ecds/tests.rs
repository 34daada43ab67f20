use std::path::PathBuf;

use super::*;

#[test]
fn wasm_deployment_becomes_a_wasm_filter_reading_the_stored_module() {
    let path = PathBuf::from("/data/store/abc.wasm");
    let any = extension_config(&FilterDeployment {
        name: "authz",
        kind: ArtifactKind::Wasm,
        module: ModuleSource::Local(&path),
        failure_policy: Default::default(),
        vm: &Default::default(),
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
        module: ModuleSource::Local(&path),
        failure_policy: Default::default(),
        vm: &Default::default(),
        config_json: "{}",
    };
    assert_eq!(extension_config(&deployment), extension_config(&deployment));
}

#[test]
fn native_deployment_becomes_a_dynamic_module_filter_loading_the_stored_so() {
    use envoy_types::pb::envoy::extensions::filters::http::dynamic_modules::v3::DynamicModuleFilter as Official;
    let path = PathBuf::from("/data/store/abc.so");
    let any = extension_config(&FilterDeployment {
        name: "authz",
        kind: ArtifactKind::Native,
        module: ModuleSource::Local(&path),
        failure_policy: Default::default(),
        vm: &Default::default(),
        config_json: r#"{"api_keys":["k"]}"#,
    });
    let tec = TypedExtensionConfig::decode(any.value.as_slice()).expect("decodes");
    let typed = tec.typed_config.expect("typed config");
    assert_eq!(
        typed.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
    );
    let ours = DynamicModuleFilter::decode(typed.value.as_slice()).expect("decodes");
    let module = ours
        .dynamic_module_config
        .and_then(|c| c.module)
        .and_then(|m| m.specifier);
    let Some(async_data_source::Specifier::Local(local)) = module else {
        panic!("a local module expected");
    };
    assert_eq!(
        local.specifier,
        Some(data_source::Specifier::Filename(
            "/data/store/abc.so".into()
        ))
    );
    // The fields envoy-types knows decode the same with the official message.
    let official = Official::decode(typed.value.as_slice()).expect("decodes");
    assert_eq!(official.filter_name, "authz");
    assert_eq!(
        official.dynamic_module_config.expect("config").name,
        "authz"
    );
    let config = official.filter_config.expect("filter config");
    let value = StringValue::decode(config.value.as_slice()).expect("string value");
    assert_eq!(value.value, r#"{"api_keys":["k"]}"#);
}

#[test]
fn vm_settings_reach_the_plugin_and_vm_config_and_default_to_envoys() {
    let path = PathBuf::from("/data/store/abc.wasm");
    let decode = |vm: &meshplug_core::manifest::VmSettings| {
        let any = extension_config(&FilterDeployment {
            name: "authz",
            kind: ArtifactKind::Wasm,
            module: ModuleSource::Local(&path),
            failure_policy: Default::default(),
            vm,
            config_json: "{}",
        });
        let tec = TypedExtensionConfig::decode(any.value.as_slice()).expect("decodes");
        let typed = tec.typed_config.expect("typed config");
        let plugin = Wasm::decode(typed.value.as_slice())
            .expect("decodes")
            .config
            .expect("plugin config");
        let Some(plugin_config::Vm::VmConfig(vm)) = plugin.vm.clone() else {
            panic!("vm config expected");
        };
        (plugin, vm)
    };
    let (plugin, vm) = decode(&Default::default());
    assert_eq!((plugin.root_id.as_str(), vm.vm_id.as_str()), ("", "authz"));
    assert_eq!(vm.configuration, None);

    let settings = meshplug_core::manifest::VmSettings {
        root_id: Some("second_root".into()),
        vm_id: Some("shared".into()),
        configuration: Some("vm: text\n".into()),
    };
    let (plugin, vm) = decode(&settings);
    assert_eq!(plugin.root_id, "second_root");
    assert_eq!(vm.vm_id, "shared");
    let config = vm.configuration.expect("vm configuration");
    let value = StringValue::decode(config.value.as_slice()).expect("string value");
    assert_eq!(value.value, "vm: text\n");
}
