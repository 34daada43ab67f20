//! The mTLS transport socket of the bootstrap's control-plane clusters (`meshplug_xds`,
//! `meshplug_metrics`), with file-based SDS: Envoy reads its certificate, key and CA from two
//! secret files and watches them, so a rotated certificate (files renamed into place, as
//! `meshplug pki` writes them) is used for new connections without a restart.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The secret name of the client certificate.
pub const CLIENT_SECRET: &str = "meshplug_client";
/// The secret name of the CA.
pub const CA_SECRET: &str = "meshplug_ca";

/// What the transport socket is made of (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsTls {
    /// The CA the control plane's certificate chains to.
    pub ca: PathBuf,
    /// This node's certificate and key.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The name (DNS or IP) the control plane's certificate must carry.
    pub server_name: String,
    /// Where the two SDS files live.
    pub sds_dir: PathBuf,
}

impl XdsTls {
    /// The SDS file of the client certificate.
    pub fn client_secret_path(&self) -> PathBuf {
        self.sds_dir.join("meshplug-client-sds.yaml")
    }

    /// The SDS file of the CA.
    pub fn ca_secret_path(&self) -> PathBuf {
        self.sds_dir.join("meshplug-ca-sds.yaml")
    }

    /// The two SDS files' contents: (path, YAML).
    pub fn secret_files(&self) -> [(PathBuf, String); 2] {
        let client = format!(
            "resources:\n  - \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n    \
             name: {CLIENT_SECRET}\n    tls_certificate:\n      certificate_chain: {{ filename: {} }}\n      \
             private_key: {{ filename: {} }}\n",
            quoted(&self.cert),
            quoted(&self.key)
        );
        let (san_type, _) = self.server_name_kind();
        let ca = format!(
            "resources:\n  - \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n    \
             name: {CA_SECRET}\n    validation_context:\n      trusted_ca: {{ filename: {} }}\n      \
             match_typed_subject_alt_names:\n        - {{ san_type: {san_type}, matcher: {{ exact: {:?} }} }}\n",
            quoted(&self.ca),
            self.server_name
        );
        [
            (self.client_secret_path(), client),
            (self.ca_secret_path(), ca),
        ]
    }

    /// (`san_type`, whether SNI is sent): an IP address is matched as `IP_ADDRESS` and sent
    /// no SNI (SNI carries host names only); a name as `DNS`.
    fn server_name_kind(&self) -> (&'static str, bool) {
        match self.server_name.parse::<IpAddr>() {
            Ok(_) => ("IP_ADDRESS", false),
            Err(_) => ("DNS", true),
        }
    }

    /// The `transport_socket:` line for a cluster, on one line (YAML flow style), for the
    /// templates' `{{XDS_TLS}}` placeholder.
    pub fn transport_socket(&self) -> String {
        let sds = |path: &Path| {
            format!(
                "{{ path_config_source: {{ path: {} }}, resource_api_version: V3 }}",
                quoted(path)
            )
        };
        let sni = match self.server_name_kind() {
            (_, true) => format!("sni: {:?}, ", self.server_name),
            (_, false) => String::new(),
        };
        format!(
            "transport_socket: {{ name: envoy.transport_sockets.tls, typed_config: {{ \"@type\": \
             type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, \
             {sni}common_tls_context: {{ alpn_protocols: [h2], tls_certificate_sds_secret_configs: \
             [{{ name: {CLIENT_SECRET}, sds_config: {} }}], validation_context_sds_secret_config: \
             {{ name: {CA_SECRET}, sds_config: {} }} }} }} }}",
            sds(&self.client_secret_path()),
            sds(&self.ca_secret_path())
        )
    }
}

/// A path as a double-quoted YAML scalar.
fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
