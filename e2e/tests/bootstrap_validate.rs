//! Every bootstrap template in `envoy-config/`, rendered, passes `envoy --mode validate`.

use std::process::Command;

use e2e::paths::{bootstrap_template, envoy_binary};
use meshplug::bootstrap::{render, standard_vars};

const TEMPLATES: [&str; 3] = [
    "bootstrap.yaml",
    "bootstrap-file-ecds.yaml",
    "bootstrap-mesh.yaml",
];

#[test]
fn rendered_templates_pass_envoy_validate() {
    let envoy = envoy_binary().expect("envoy installed");
    let dir = tempfile::tempdir().expect("tempdir");
    for name in TEMPLATES {
        let template = std::fs::read_to_string(bootstrap_template(name)).expect("template");
        let mut vars = standard_vars(
            "validate",
            "validate",
            [
                ("ADMIN_PORT", 0),
                ("LISTENER_PORT", 0),
                ("XDS_PORT", 18000),
                ("UPSTREAM_PORT", 18001),
            ],
        );
        vars.insert("ECDS_DIR", dir.path().display().to_string());
        vars.insert("NODE_LABELS", "{tier: edge}".to_string());
        vars.insert("ADS_API", "DELTA_GRPC".to_string());
        let rendered = render(&template, &vars).expect("renders");
        let path = dir.path().join(name);
        std::fs::write(&path, rendered).expect("write");
        if name == "bootstrap-file-ecds.yaml" {
            std::fs::write(dir.path().join("authz.yaml"), "resources: []\n").expect("ecds file");
        }
        let output = Command::new(&envoy)
            .args(["--mode", "validate", "-c"])
            .arg(&path)
            .output()
            .expect("run envoy");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{name} failed validation:\n{log}");
        assert!(log.contains("OK"), "{name}: {log}");
    }
}
