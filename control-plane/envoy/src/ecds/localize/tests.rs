use std::path::PathBuf;

use super::*;
use crate::ecds::{FilterDeployment, ModuleSource, extension_config};

const SHA: &str = "4e1243bd22c66e76c2ba9eddc1f91394e57f9f83b6f7f8f2c1f4f2f3f4f5f6f7";

fn remote(kind: ArtifactKind) -> Any {
    let uri = format!(
        "http://198.18.0.2:8081/artifacts/{SHA}.{}",
        kind.extension()
    );
    extension_config(&FilterDeployment {
        name: "authz",
        kind,
        module: ModuleSource::Remote {
            uri: &uri,
            sha256: SHA,
        },
        failure_policy: Default::default(),
        vm: &Default::default(),
        config_json: r#"{"api_keys":["k"]}"#,
    })
}

#[test]
fn a_remote_resource_names_its_uri_sha_and_kind_and_asks_envoy_to_nack_a_miss() {
    for kind in [ArtifactKind::Wasm, ArtifactKind::Native] {
        let found = remote_module(&remote(kind))
            .expect("decodes")
            .expect("remote");
        assert_eq!(found.filter, "authz");
        assert_eq!(found.sha256, SHA);
        assert_eq!(found.kind, kind);
        assert!(
            found
                .uri
                .ends_with(&format!("/artifacts/{SHA}.{}", kind.extension()))
        );
    }
    let config = decode::<TypedExtensionConfig>(&remote(ArtifactKind::Wasm)).expect("tec");
    let wasm = decode::<Wasm>(&config.typed_config.expect("typed")).expect("wasm");
    assert!(wasm_vm(&wasm).expect("vm").nack_on_code_cache_miss);
    let config = decode::<TypedExtensionConfig>(&remote(ArtifactKind::Native)).expect("tec");
    let filter = decode::<DynamicModuleFilter>(&config.typed_config.expect("typed")).expect("so");
    assert!(
        filter
            .dynamic_module_config
            .expect("config")
            .nack_on_cache_miss
    );
}

#[test]
fn a_local_resource_has_no_remote_module() {
    let path = PathBuf::from("/data/store/x.wasm");
    let local = extension_config(&FilterDeployment {
        name: "authz",
        kind: ArtifactKind::Wasm,
        module: ModuleSource::Local(&path),
        failure_policy: Default::default(),
        vm: &Default::default(),
        config_json: "{}",
    });
    assert_eq!(remote_module(&local).expect("decodes"), None);
}

#[test]
fn localizing_swaps_only_the_module_source() {
    for kind in [ArtifactKind::Wasm, ArtifactKind::Native] {
        let path = PathBuf::from(format!("/var/cache/meshplug/{SHA}.{}", kind.extension()));
        let rewritten = with_local_module(&remote(kind), &path).expect("rewrites");
        let expected = extension_config(&FilterDeployment {
            name: "authz",
            kind,
            module: ModuleSource::Local(&path),
            failure_policy: Default::default(),
            vm: &Default::default(),
            config_json: r#"{"api_keys":["k"]}"#,
        });
        // Byte for byte what the control plane would send a proxy on its own disk.
        assert_eq!(rewritten, expected, "{kind:?}");
        assert_eq!(remote_module(&rewritten).expect("decodes"), None);
    }
}

#[test]
fn garbage_and_bad_shas_are_clear_errors() {
    let garbage = Any {
        type_url: "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig".into(),
        value: vec![0xff, 0xff, 0xff],
    };
    assert!(matches!(
        remote_module(&garbage),
        Err(Error::BadRemoteModule(_))
    ));
    let bad = extension_config(&FilterDeployment {
        name: "authz",
        kind: ArtifactKind::Wasm,
        module: ModuleSource::Remote {
            uri: "http://198.18.0.2/artifacts/x.wasm",
            sha256: "not-a-sha",
        },
        failure_policy: Default::default(),
        vm: &Default::default(),
        config_json: "{}",
    });
    let err = remote_module(&bad).expect_err("refused");
    assert!(err.to_string().contains("sha256"), "{err}");
}
