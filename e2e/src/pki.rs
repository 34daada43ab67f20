//! Certificates for mTLS tests, made with the `meshplug pki` command a user types: a CA, the
//! control plane's certificate for its addresses, and one certificate per node. Also what an
//! Envoy needs to use one: the bootstrap's transport socket and its file-based SDS secrets.

use std::path::{Path, PathBuf};
use std::process::Command;

use meshplug::bootstrap::BootstrapVars;
use meshplug::bootstrap::tls::XdsTls;
use meshplug::tls::ClientTls;
use tempfile::TempDir;

use crate::HarnessError;
use crate::paths::meshplug_binary;

/// A CA folder and the certificates issued from it.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// A CA, and a server certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("meshplug-e2e-pki-")
            .tempdir()
            .map_err(HarnessError::io("creating pki dir"))?;
        let pki = Self { dir };
        pki.run(&["init"])?;
        let mut server = vec!["server"];
        for name in names {
            server.extend(["--name", name]);
        }
        pki.run(&server)?;
        Ok(pki)
    }

    /// Runs `meshplug pki <args> --dir <dir>`.
    pub fn run(&self, args: &[&str]) -> Result<(), HarnessError> {
        let output = Command::new(meshplug_binary()?)
            .arg("pki")
            .args(args)
            .arg("--dir")
            .arg(self.dir.path())
            .output()
            .map_err(HarnessError::io("running meshplug pki"))?;
        if !output.status.success() {
            return Err(HarnessError::NotReady(format!(
                "meshplug pki {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// Issues (or with `force`, re-issues) the certificate of node `id`.
    pub fn issue_node(&self, id: &str, force: bool) -> Result<(), HarnessError> {
        let mut args = vec!["issue", "--node-id", id];
        if force {
            args.push("--force");
        }
        self.run(&args)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `meshplug serve` arguments: its certificate, and this CA for clients.
    pub fn serve_args(&self) -> Vec<String> {
        [
            ("--tls-cert", "server.pem"),
            ("--tls-key", "server-key.pem"),
            ("--client-ca", "ca.pem"),
        ]
        .into_iter()
        .flat_map(|(flag, file)| [flag.to_string(), self.path(file).display().to_string()])
        .collect()
    }

    /// A client of this CA presenting node `id`'s certificate (`None`: no certificate).
    pub fn client(&self, id: Option<&str>) -> ClientTls {
        ClientTls {
            ca: self.path("ca.pem"),
            identity: id.map(|id| {
                (
                    self.path(&format!("node-{id}.pem")),
                    self.path(&format!("node-{id}-key.pem")),
                )
            }),
        }
    }

    /// An HTTP client trusting this CA, presenting node `id`'s certificate (`None`: none).
    pub fn http_client(&self, id: Option<&str>) -> Result<reqwest::Client, HarnessError> {
        let builder = reqwest::Client::builder().no_proxy();
        Ok(self.client(id).reqwest(builder)?.build()?)
    }

    /// Issues the certificate of admin client `name` and returns a client presenting it.
    pub fn admin_client(&self, name: &str) -> Result<ClientTls, HarnessError> {
        self.run(&["issue", "--client", name])?;
        Ok(ClientTls {
            ca: self.path("ca.pem"),
            identity: Some((
                self.path(&format!("client-{name}.pem")),
                self.path(&format!("client-{name}-key.pem")),
            )),
        })
    }

    /// Bootstrap placeholders for an Envoy that connects over mTLS with the certificate of
    /// `cert_of` (normally its own node id), trusting `ca` (normally this CA's `ca.pem`), the
    /// control plane reached as `server_name`. Writes its SDS secrets into `sds_dir`.
    pub fn envoy_vars(
        &self,
        cert_of: &str,
        ca: &Path,
        server_name: &str,
        sds_dir: &Path,
    ) -> Result<BootstrapVars, HarnessError> {
        std::fs::create_dir_all(sds_dir).map_err(HarnessError::io("creating sds dir"))?;
        let tls = XdsTls {
            ca: ca.to_path_buf(),
            cert: self.path(&format!("node-{cert_of}.pem")),
            key: self.path(&format!("node-{cert_of}-key.pem")),
            server_name: server_name.to_string(),
            sds_dir: sds_dir.to_path_buf(),
        };
        for (path, text) in tls.secret_files() {
            std::fs::write(&path, text).map_err(HarnessError::io("writing an SDS secret"))?;
        }
        let mut vars = BootstrapVars::new();
        vars.insert("XDS_TLS", tls.transport_socket());
        vars.insert("METRICS_TLS", tls.transport_socket());
        Ok(vars)
    }
}
