//! Renders an Envoy bootstrap template: `{{NAME}}` placeholders are replaced, and any left over
//! is an error, so a template and its caller cannot drift apart silently. `{{NAME|value}}`
//! says what `NAME` is when the caller gives none (e.g. `{{XDS_HOST|127.0.0.1}}`).

use std::collections::BTreeMap;

use crate::Error;

/// Placeholder values by name.
pub type BootstrapVars = BTreeMap<&'static str, String>;

/// Replaces every `{{NAME}}` in `template` with `vars[NAME]`.
pub fn render(template: &str, vars: &BootstrapVars) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Error::UnknownPlaceholder(after.chars().take(20).collect()));
        };
        let (name, default) = match after[..end].split_once('|') {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        let value = vars
            .get(name)
            .map(String::as_str)
            .or(default)
            .ok_or_else(|| Error::UnknownPlaceholder(name.to_string()))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The variables of `envoy-config/bootstrap.yaml` (and `bootstrap-mesh.yaml`). `METRICS_PORT` defaults to `XDS_PORT`: the
/// control plane serves ADS and the MetricsService on one port.
pub fn standard_vars(
    node_id: &str,
    node_cluster: &str,
    ports: [(&'static str, u16); 4],
) -> BootstrapVars {
    let mut vars = BootstrapVars::new();
    vars.insert("NODE_ID", node_id.to_string());
    vars.insert("NODE_CLUSTER", node_cluster.to_string());
    for (name, port) in ports {
        vars.insert(name, port.to_string());
    }
    if let Some(xds) = vars.get("XDS_PORT").cloned() {
        vars.entry("METRICS_PORT").or_insert(xds);
    }
    // `bootstrap-mesh.yaml`: no metadata labels, state-of-the-world ADS.
    vars.insert("NODE_LABELS", "{}".to_string());
    vars.insert("ADS_API", "GRPC".to_string());
    vars
}

pub mod tls;

#[cfg(test)]
mod tests;
