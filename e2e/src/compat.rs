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
    composed_with_build(&path, module, (plugin, spec), &[], &[plugin]).await
}

/// As [`composed_with`], for any build: `path` published as `file` (`<build>.wasm` or
/// `lib<build>.so`), after the manifests `before` (folder, file, text: a cluster it calls, a
/// plugin before it), the Envoy started once `chain` is its chain.
pub async fn composed_with_build(
    path: &std::path::Path,
    file: &str,
    (plugin, spec): (&str, &str),
    before: &[(&str, &str, &str)],
    chain: &[&str],
) -> Result<Mesh, HarnessError> {
    let build = build_name(file);
    let mut mesh = Mesh::start_composed(&[]).await?;
    for (folder, name, text) in before {
        mesh.write_manifest(folder, name, text)?;
    }
    mesh.publish_copy(path, file)?;
    let manifest = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {plugin}}}\n\
         spec:\n  artifact: {build}\n  rollout: immediate\n{spec}"
    );
    mesh.write_manifest("plugins", &format!("{plugin}.yaml"), &manifest)?;
    mesh.add_mesh_envoy("envoy-1", "{tier: edge}", Ads::StateOfTheWorld)
        .await?;
    mesh.wait_for_chain(0, chain).await;
    Ok(mesh)
}

/// Waits (up to 30 s) until `GET path` through Envoy 0 of `mesh` answers as `check` wants.
pub async fn wait_for_answer(
    mesh: &Mesh,
    path: &str,
    check: impl Fn(&crate::mesh::Answer) -> Result<(), String>,
) {
    eventually(Duration::from_secs(30), &format!("GET {path}"), || async {
        let answer = mesh.get(0, path, &[]).await.map_err(|e| e.to_string())?;
        check(&answer)
    })
    .await;
}

/// A built-in Lua filter as a plugin named `lua` (phase `authn`) that copies request header
/// `x-custom-metadata`, passed through Lua function `transform` (`string.upper`), into dynamic
/// metadata `envoy.filters.http.lua` / `uppercased-custom-metadata`: what the corpus README's
/// `envoy_filter_metadata` needs before it.
pub fn lua_metadata_plugin(transform: &str) -> String {
    format!(
        r#"apiVersion: meshplug.dev/v1alpha1
kind: Plugin
metadata: {{name: lua}}
spec:
  phase: authn
  rollout: immediate
  envoyFilter:
    typeUrl: type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
    config:
      default_source_code:
        inline_string: |
          function envoy_on_request(request_handle)
            local value = request_handle:headers():get("x-custom-metadata")
            if value then
              request_handle:streamInfo():dynamicMetadata():set(
                "envoy.filters.http.lua", "uppercased-custom-metadata", {transform}(value))
            end
          end
"#
    )
}

/// The build name of an artifact file: `authz` for `authz.wasm` and for `libauthz.so`.
pub fn build_name(file: &str) -> &str {
    match file.strip_prefix("lib").and_then(|f| f.strip_suffix(".so")) {
        Some(build) => build,
        None => file.trim_end_matches(".wasm"),
    }
}

/// One of the SDK's examples (`filters/examples/<example>`) as `make filters` builds it, as
/// `.wasm` (`native` false) or `.so`: its path and its file name.
pub fn example_build(
    example: &str,
    native: bool,
) -> Result<(std::path::PathBuf, String), HarnessError> {
    let file = match native {
        true => format!("lib{example}.so"),
        false => format!("{example}.wasm"),
    };
    Ok((crate::paths::filter_artifact(&file)?, file))
}

/// The example's shipped pre-flight fixtures as one `  fixtures: [...]` line of a plugin spec.
pub fn example_fixtures_line(example: &str) -> Result<String, HarnessError> {
    let path = crate::paths::repo_root()
        .join("filters/examples")
        .join(example)
        .join("preflight/fixtures.json");
    let text = std::fs::read(&path).map_err(HarnessError::io("reading fixtures"))?;
    let value: serde_json::Value = serde_json::from_slice(&text)?;
    Ok(format!("  fixtures: {value}\n"))
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

/// The `ingress` Listener manifest with `/secret` answered directly with `body` and the rest
/// sent to the upstream: a response body the corpus' `http_body` (and its twin) must redact.
pub fn secret_listener(body: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {{name: ingress}}\n\
         spec:\n  port: 0\n  routes:\n    \
         - {{prefix: /secret, directResponse: {{status: 200, body: {body:?}}}}}\n    \
         - {{prefix: /, cluster: upstream}}\n"
    )
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
