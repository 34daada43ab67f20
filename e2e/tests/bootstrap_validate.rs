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
        let log = validate(&envoy, &path).unwrap_or_else(|log| panic!("{name}:\n{log}"));
        assert!(log.contains("OK"), "{name}: {log}");
    }
}

/// `meshplug bootstrap --ca --tls-cert --tls-key` renders mTLS on the control-plane
/// clusters with file-based SDS secrets that Envoy loads; `--xds-via-agent` keeps the
/// agent's loopback cluster plain and puts TLS on the stats cluster alone.
#[test]
fn the_cli_renders_mtls_bootstraps_that_envoy_validates() {
    let envoy = envoy_binary().expect("envoy installed");
    let pki = e2e::pki::TestPki::new(&["127.0.0.1"]).expect("pki");
    pki.issue_node("validate", false).expect("node certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    for (via_agent, sockets) in [(false, 2), (true, 1)] {
        let mut command = Command::new(e2e::paths::meshplug_binary().expect("meshplug"));
        command
            .arg("bootstrap")
            .arg("--template")
            .arg(bootstrap_template("bootstrap.yaml"))
            .args([
                "--node-id",
                "validate",
                "--admin-port",
                "0",
                "--listener-port",
                "0",
            ])
            .arg("--ca")
            .arg(pki.path("ca.pem"))
            .arg("--tls-cert")
            .arg(pki.path("node-validate.pem"))
            .arg("--tls-key")
            .arg(pki.path("node-validate-key.pem"))
            .arg("--sds-dir")
            .arg(dir.path());
        if via_agent {
            command.args(["--xds-via-agent", "--metrics-address", "127.0.0.1:18000"]);
        }
        let output = command.output().expect("meshplug bootstrap");
        assert!(output.status.success(), "{output:?}");
        let rendered = String::from_utf8(output.stdout).expect("utf-8");
        assert_eq!(
            rendered.matches("transport_socket:").count(),
            sockets,
            "{rendered}"
        );
        for secret in ["meshplug-client-sds.yaml", "meshplug-ca-sds.yaml"] {
            assert!(dir.path().join(secret).exists(), "{secret} written");
        }
        let path = dir.path().join("bootstrap-tls.yaml");
        std::fs::write(&path, rendered).expect("write");
        validate(&envoy, &path)
            .unwrap_or_else(|log| panic!("the mTLS bootstrap failed validation:\n{log}"));
    }
}

/// `envoy --mode validate -c path`: its output, `Err` when it fails.
fn validate(envoy: &std::path::Path, path: &std::path::Path) -> Result<String, String> {
    let output = Command::new(envoy)
        .args(["--mode", "validate", "-c"])
        .arg(path)
        .output()
        .expect("run envoy");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.success() {
        true => Ok(log),
        false => Err(log),
    }
}
