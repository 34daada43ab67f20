//! A [`ReplicaSet`] serving the mesh from manifests ([`ReplicaSet::start_composed`]): each
//! replica's manifest folders, and Envoys whose listeners come from meshplug.

use meshplug::bootstrap::BootstrapVars;

use super::ReplicaSet;
use crate::HarnessError;

impl ReplicaSet {
    /// Starts `envoy-<i>` (the next index) on replica `replica` from `bootstrap-mesh.yaml`
    /// with node labels `labels` (a YAML flow map): its listeners come from the manifests.
    pub async fn add_mesh_envoy(
        &mut self,
        replica: usize,
        labels: &str,
    ) -> Result<(), HarnessError> {
        let mut vars = BootstrapVars::new();
        let xds = self.replicas[replica].addrs.xds.port().to_string();
        vars.insert("XDS_PORT", xds);
        vars.insert("NODE_LABELS", labels.to_string());
        vars.insert("ADS_API", "GRPC".to_string());
        let envoy = self.start_envoy("bootstrap-mesh.yaml", vars).await?;
        self.envoys.push(envoy);
        Ok(())
    }

    /// Writes manifest `file` into `folder` (`plugins` or `mesh`) of every replica.
    pub fn write_manifest(&self, folder: &str, file: &str, text: &str) -> Result<(), HarnessError> {
        for i in 0..self.replicas.len() {
            self.write_manifest_on(i, folder, file, text)?;
        }
        Ok(())
    }

    /// Writes manifest `file` into `folder` (`plugins` or `mesh`) of replica `i` alone,
    /// renamed into place as an editor would.
    pub fn write_manifest_on(
        &self,
        i: usize,
        folder: &str,
        file: &str,
        text: &str,
    ) -> Result<(), HarnessError> {
        let dir = self.dir.path().join(format!("r{i}")).join(folder);
        std::fs::create_dir_all(&dir).map_err(HarnessError::io("creating manifest folder"))?;
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).map_err(HarnessError::io("writing manifest"))?;
        std::fs::rename(&tmp, dir.join(file)).map_err(HarnessError::io("renaming manifest"))
    }

    /// The upstream every composed `Cluster` manifest of the tests points at.
    pub fn upstream_addr(&self) -> std::net::SocketAddr {
        self.upstream.addr
    }
}
