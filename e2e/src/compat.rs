//! The third-party compatibility corpus (`../shared/compat/`, [`crate::paths::compat_module`])
//! in a test bed: a control plane serving the mesh from manifests with one module of the corpus
//! as a plugin, and one Envoy running it.

use std::time::Duration;

use crate::composed::Ads;
use crate::paths::compat_module;
use crate::{HarnessError, Mesh, eventually};

/// Starts a composed mesh (`upstream` cluster, `ingress` listener) whose one plugin `plugin`
/// runs corpus module `module` (`http_config.wasm`) with the extra `spec` lines (each
/// `  key: value\n`), and an Envoy (`envoy-1`) once the plugin is in its chain.
pub async fn composed_with(module: &str, plugin: &str, spec: &str) -> Result<Mesh, HarnessError> {
    let path = compat_module(module)?;
    let build = module.trim_end_matches(".wasm");
    let mut mesh = Mesh::start_composed(&[]).await?;
    mesh.publish_copy(&path, module)?;
    let manifest = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {plugin}}}\n\
         spec:\n  artifact: {build}\n  rollout: immediate\n{spec}"
    );
    mesh.write_manifest("plugins", &format!("{plugin}.yaml"), &manifest)?;
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await?;
    mesh.wait_for_chain(0, &[plugin]).await;
    Ok(mesh)
}

/// Waits (up to 30 s) until an answer of Envoy `envoy` to `GET /` carries header `name` with
/// exactly the bytes of `value`.
pub async fn wait_for_header(mesh: &Mesh, envoy: usize, name: &str, value: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("header {name}"),
        || async {
            let answer = mesh.get(envoy, "/", &[]).await.map_err(|e| e.to_string())?;
            let header = answer.headers.get(name).map(|v| v.as_bytes().to_vec());
            match header {
                Some(bytes) if bytes == value.as_bytes() => Ok(()),
                other => Err(format!(
                    "status {}, {name} {:?}",
                    answer.status,
                    other.map(|b| String::from_utf8_lossy(&b).into_owned())
                )),
            }
        },
    )
    .await;
}
