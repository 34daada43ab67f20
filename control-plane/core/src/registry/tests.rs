use super::*;

fn artifact(sha: &str) -> PublishedArtifact {
    PublishedArtifact {
        kind: ArtifactKind::Wasm,
        sha256: sha.into(),
        path: PathBuf::from(format!("/s/{sha}.wasm")),
        envoy_version: None,
        signers: Vec::new(),
        signatures: Vec::new(),
    }
}

#[test]
fn nothing_to_deploy_without_an_artifact() {
    let mut reg = Registry::new();
    assert!(reg.set_config("authz", r#"{"a":1}"#.into()));
    assert!(reg.release("authz").is_none());
}

#[test]
fn artifact_and_config_make_the_version() {
    let mut reg = Registry::new();
    assert!(reg.set_artifact("authz", artifact("aaa")));
    assert!(
        !reg.set_artifact("authz", artifact("aaa")),
        "same artifact is no change"
    );
    let first = reg.release("authz").expect("deployable");
    assert_eq!(first.config_json, DEFAULT_CONFIG);
    let v1 = first.version;
    assert!(v1.starts_with("aaa:"));

    assert!(reg.set_config("authz", r#"{"a":1}"#.into()));
    assert!(!reg.set_config("authz", r#"{"a":1}"#.into()));
    let v2 = reg.release("authz").expect("deployable").version;
    assert_ne!(v1, v2, "a config change is a new version");
    assert!(v2.starts_with("aaa:"));
}

#[test]
fn vm_settings_change_the_version_and_their_absence_does_not() {
    use crate::manifest::VmSettings;
    let config = r#"{"a":1}"#;
    let plain = settings_sha256(config, FailurePolicy::FailClosed, &VmSettings::default());
    assert_eq!(
        plain,
        sha256_hex(config.as_bytes()),
        "without VM settings the digest is the configuration's, as before they existed"
    );
    let shared = VmSettings {
        vm_id: Some("shared".into()),
        ..VmSettings::default()
    };
    let with_vm = settings_sha256(config, FailurePolicy::FailClosed, &shared);
    assert_ne!(with_vm, plain);
    let with_root = VmSettings {
        root_id: Some("shared".into()),
        ..VmSettings::default()
    };
    assert_ne!(
        settings_sha256(config, FailurePolicy::FailClosed, &with_root),
        with_vm,
        "each setting is its own line"
    );
}
