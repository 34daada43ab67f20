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

/// A `kind: Cluster` manifest named `name` with the one endpoint `addr`.
pub fn cluster_manifest(name: &str, addr: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\n\
         spec:\n  endpoints: [\"{addr}\"]\n"
    )
}

/// Waits (up to 30 s) until the public SDK's `http_auth_random` example, running in Envoy
/// `envoy`, gives the verdict its README describes for a callout answered with an even first
/// byte (`allowed`: 200 from the upstream) or an odd one (403 `Access forbidden.`), with its
/// `powered-by: proxy-wasm` header either way.
pub async fn wait_for_auth_verdict(mesh: &Mesh, envoy: usize, allowed: bool) {
    let (status, body) = match allowed {
        true => (200, crate::upstream::UPSTREAM_BODY),
        false => (403, "Access forbidden.\n"),
    };
    eventually(
        Duration::from_secs(30),
        &format!("the callout's verdict {status}"),
        || async {
            let answer = mesh.get(envoy, "/", &[]).await.map_err(|e| e.to_string())?;
            let powered = answer.header("powered-by") == Some("proxy-wasm");
            match (answer.status, answer.body.as_str()) {
                (s, b) if s == status && powered && b.trim_end() == body.trim_end() => Ok(()),
                (s, b) => Err(format!("status {s}, powered-by {powered}, body {b:?}")),
            }
        },
    )
    .await;
}
