//! A mesh whose listeners, routes and clusters come from meshplug: the control plane runs with
//! `--plugins` and `--mesh` folders, and each Envoy boots from `bootstrap-mesh.yaml` with its
//! own metadata labels, over state-of-the-world or Delta ADS.

use std::path::PathBuf;
use std::time::Duration;

use meshplug::bootstrap::BootstrapVars;
use serde_json::Value;

use crate::envoy::{Envoy, EnvoyOptions};
use crate::mesh::{Mesh, TEST_API_KEY};
use crate::paths::bootstrap_template;
use crate::{HarnessError, eventually};

/// Which ADS flavour an Envoy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ads {
    /// `StreamAggregatedResources`.
    StateOfTheWorld,
    /// `DeltaAggregatedResources`.
    Delta,
}

/// A plugin manifest for the tests: `name` runs build `artifact` in `phase`, with `config`
/// (a YAML flow mapping) and `extra` spec lines (each `  key: value\n`).
pub fn plugin_manifest(
    name: &str,
    artifact: &str,
    phase: &str,
    config: &str,
    extra: &str,
) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata:\n  name: {name}\nspec:\n  \
         artifact: {artifact}\n  phase: {phase}\n  config: {config}\n  rollout: immediate\n{extra}"
    )
}

/// The authz configuration of the tests, as a YAML flow mapping.
pub fn authz_config_yaml() -> String {
    format!("{{api_keys: [{TEST_API_KEY}]}}")
}

impl Mesh {
    /// Starts upstream and a control plane serving the mesh from manifests: an `upstream`
    /// cluster and an `ingress` listener (any port, `/` to the upstream), no plugins yet.
    pub async fn start_composed(extra_args: &[&str]) -> Result<Self, HarnessError> {
        let mesh = Self::start_control_plane_in(extra_args, &["plugins", "mesh"]).await?;
        let upstream = mesh.upstream.addr;
        mesh.write_manifest(
            "mesh",
            "upstream.yaml",
            &format!(
                "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: upstream}}\n\
                 spec:\n  endpoints: [\"{upstream}\"]\n"
            ),
        )?;
        mesh.write_manifest(
            "mesh",
            "ingress.yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {name: ingress}\n\
             spec:\n  port: 0\n  routes:\n    - {prefix: /, cluster: upstream}\n",
        )?;
        mesh.wait_for_manifest("mesh/ingress.yaml").await;
        Ok(mesh)
    }

    /// Starts upstream and a control plane run with `--plugins <dir>/plugins` alone (the
    /// proxies' listeners are their bootstraps'), and one Envoy (`envoy-1`) on `bootstrap.yaml`.
    pub async fn start_with_plugins(extra_args: &[&str]) -> Result<Self, HarnessError> {
        let mut mesh = Self::start_control_plane_in(extra_args, &["plugins"]).await?;
        mesh.add_envoy("envoy-1", "edge").await?;
        Ok(mesh)
    }

    /// A manifest folder (`plugins` or `mesh`) of this mesh.
    pub fn manifest_dir(&self, folder: &str) -> PathBuf {
        self.dir().join(folder)
    }

    /// Writes a manifest the way an editor or `kubectl cp` would: to a hidden temp file, then
    /// renamed in.
    pub fn write_manifest(&self, folder: &str, file: &str, text: &str) -> Result<(), HarnessError> {
        let dir = self.manifest_dir(folder);
        std::fs::create_dir_all(&dir).map_err(HarnessError::io("creating manifest folder"))?;
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).map_err(HarnessError::io("writing manifest"))?;
        std::fs::rename(&tmp, dir.join(file)).map_err(HarnessError::io("renaming manifest"))
    }

    /// Deletes a manifest.
    pub fn remove_manifest(&self, folder: &str, file: &str) -> Result<(), HarnessError> {
        std::fs::remove_file(self.manifest_dir(folder).join(file))
            .map_err(HarnessError::io("removing manifest"))
    }

    /// Waits (up to 20 s) until `file` (`plugins/x.yaml`) is read; returns its status from
    /// `/api/v1/manifests`.
    pub async fn wait_for_manifest(&self, file: &str) -> Value {
        self.wait_for_manifest_where(file, |_| true).await
    }

    /// Waits (up to 20 s) until the status of `file` satisfies `check`.
    pub async fn wait_for_manifest_where(
        &self,
        file: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(
            Duration::from_secs(20),
            &format!("{file} to be read"),
            || async {
                let manifests = self
                    .control_plane
                    .api("/api/v1/manifests")
                    .await
                    .map_err(|e| e.to_string())?;
                let status = manifests["files"]
                    .as_array()
                    .and_then(|files| files.iter().find(|f| f["file"] == file).cloned());
                match status {
                    Some(status) if check(&status) => Ok(status),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
    }

    /// Starts an Envoy on `bootstrap-mesh.yaml` with metadata `labels` (a YAML flow map).
    /// Returns once its listener from LDS is up.
    pub async fn add_mesh_envoy(
        &mut self,
        node_id: &str,
        labels: &str,
        ads: Ads,
    ) -> Result<&Envoy, HarnessError> {
        let mut vars = BootstrapVars::new();
        vars.insert("XDS_PORT", self.control_plane.addrs.xds.port().to_string());
        vars.insert("NODE_LABELS", labels.to_string());
        let api = match ads {
            Ads::StateOfTheWorld => "GRPC",
            Ads::Delta => "DELTA_GRPC",
        };
        vars.insert("ADS_API", api.to_string());
        let options = EnvoyOptions {
            node_id: node_id.into(),
            cluster: "mesh".into(),
            template: bootstrap_template("bootstrap-mesh.yaml"),
            vars,
            workers: crate::envoy::DEFAULT_WORKERS,
            on_host: None,
        };
        let envoy = Envoy::start(self.dir(), options).await?;
        self.envoys.push(envoy);
        Ok(&self.envoys[self.envoys.len() - 1])
    }

    /// The HTTP filters of `ingress` on Envoy number `envoy`, from its config dump, in order.
    pub async fn chain_of(&self, envoy: usize) -> Result<Vec<String>, HarnessError> {
        ingress_chain(&self.http, &self.envoys[envoy]).await
    }

    /// Waits (up to 20 s) until Envoy number `envoy` runs exactly `chain` before its router.
    pub async fn wait_for_chain(&self, envoy: usize, chain: &[&str]) {
        let mut want: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
        want.push("envoy.filters.http.router".into());
        eventually(
            Duration::from_secs(20),
            &format!("chain {chain:?}"),
            || async {
                match self.chain_of(envoy).await {
                    Ok(got) if got == want => Ok(()),
                    Ok(got) => Err(format!("{got:?}")),
                    Err(err) => Err(err.to_string()),
                }
            },
        )
        .await;
    }
}

/// The HTTP filters of `ingress` on `envoy`, from its config dump, in order.
pub async fn ingress_chain(
    http: &reqwest::Client,
    envoy: &Envoy,
) -> Result<Vec<String>, HarnessError> {
    let url = format!(
        "http://{}/config_dump?resource=dynamic_listeners",
        envoy.admin
    );
    let dump: Value = http.get(url).send().await?.json().await?;
    let listener = dump["configs"]
        .as_array()
        .and_then(|c| c.iter().find(|l| l["name"] == "ingress"))
        .cloned()
        .unwrap_or_default();
    let filters = &listener["active_state"]["listener"]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    Ok(filters
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}
