//! A plugin: its builds (the one it runs, last good, rolling out, quarantined, last refused)
//! with kind, size, signers and the pre-flight's verdict, its configuration, the chains it
//! sits in, and a link to its rollout.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::{Markup, html};

use super::super::node_views;
use super::words::when;
use super::{Ui, respond, short};
use crate::registry::PluginStatus;
use crate::rollout::state::{PluginRecord, Release};

/// One build the page lists, and what it is to the plugin.
struct Build {
    role: String,
    sha256: String,
    kind: String,
    size: Option<u64>,
    signers: Vec<String>,
    note: String,
}

pub(super) async fn page(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Html<String> {
    let status = {
        let registry = ui.registry();
        registry.plugins().find(|p| p.name == name).cloned()
    };
    let targets = ui.admin.manifests.as_ref().and_then(|catalog| {
        let catalog = catalog.read().unwrap_or_else(PoisonError::into_inner);
        catalog
            .plugins
            .get(&name)
            .map(|plugin| targets_of(&plugin.spec.targets))
    });
    let (record, chains) = {
        let engine = ui.engine();
        let record = engine.plugins().get(&name).cloned();
        let mut chains: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
        for view in node_views(&engine) {
            for (listener, chain) in view.chains.iter().filter(|(_, c)| c.contains(&name)) {
                let entry = chains.entry(listener.clone()).or_default();
                entry.0.clone_from(chain);
                entry.1 += 1;
            }
        }
        (record, chains)
    };
    let main = match (&status, &record) {
        (None, None) => html! { h1 { (name) } p.refusal { "No plugin of this name." } },
        _ => {
            let targets =
                targets.unwrap_or_else(|| "every proxy (no plugin manifest names it)".into());
            let page = render(&name, status.as_ref(), record.as_ref(), &chains);
            html! { (page) h2 { "Targets" } p #targets { (targets) } }
        }
    };
    respond(&headers, &name, main)
}

/// A plugin's `spec.targets`, said plainly.
fn targets_of(selector: &meshplug_core::manifest::Selector) -> String {
    if *selector == meshplug_core::manifest::Selector::default() {
        return "every proxy (spec.targets is empty)".into();
    }
    let json = serde_json::to_string(selector).unwrap_or_default();
    format!("the proxies that match spec.targets {json}")
}

fn builds(status: Option<&PluginStatus>, record: Option<&PluginRecord>) -> Vec<Build> {
    let mut out: Vec<Build> = status.and_then(latest_build).into_iter().collect();
    if let Some(record) = record {
        out.extend(record_builds(record));
    }
    if let Some(refused) = status.and_then(|s| s.last_rejection.as_ref()) {
        out.push(Build {
            role: "last refused".into(),
            sha256: refused.sha256.clone(),
            kind: "-".into(),
            size: None,
            signers: Vec::new(),
            note: format!(
                "{}: {} ({})",
                refused.source.display(),
                refused.reason,
                when(refused.at_unix_ms)
            ),
        });
    }
    out
}

/// The build the plugin runs now, with the pre-flight it passed.
fn latest_build(status: &PluginStatus) -> Option<Build> {
    let artifact = status.artifact.as_ref()?;
    let pass = status
        .preflight
        .as_ref()
        .filter(|p| p.sha256 == artifact.sha256);
    let note = match pass {
        Some(pass) => format!(
            "pre-flight passed: {}, compiled in {:.1} ms, ran in {:.1} ms",
            match pass.fixtures_passed {
                0 => "the smoke request (no fixtures)".to_string(),
                n => format!("{n} fixtures"),
            },
            pass.compile_us as f64 / 1000.0,
            pass.run_us as f64 / 1000.0
        ),
        None => "checked (no pre-flight ran in this process: a .so, a built-in filter, \
                 pre-flight off, or stored before a restart)"
            .to_string(),
    };
    Some(Build {
        role: "latest build".into(),
        sha256: artifact.sha256.clone(),
        kind: format!("{:?}", artifact.kind).to_lowercase(),
        size: std::fs::metadata(&artifact.path).ok().map(|m| m.len()),
        signers: artifact.signers.clone(),
        note,
    })
}

/// The builds the rollout record names: last good, rolling out, queued, quarantined.
fn record_builds(record: &PluginRecord) -> Vec<Build> {
    let release = |role: &str, release: &Release, note: String| Build {
        role: role.to_string(),
        sha256: release.sha256.clone(),
        kind: format!("{:?}", release.kind).to_lowercase(),
        size: std::fs::metadata(&release.path).ok().map(|m| m.len()),
        signers: release.signers.clone(),
        note,
    };
    let mut out = Vec::new();
    if let Some(good) = &record.last_good {
        out.push(release("last good", good, String::new()));
    }
    if let Some(rollout) = &record.rollout {
        let since = format!("since {}", when(rollout.started_ms));
        out.push(release("rolling out", &rollout.to, since));
    }
    if let Some(queued) = &record.queued {
        out.push(release("queued", queued, String::new()));
    }
    for quarantined in record.quarantine.values() {
        let note = format!("{} ({})", quarantined.reason, when(quarantined.at_ms));
        out.push(release("quarantined", &quarantined.release, note));
    }
    out
}

fn render(
    name: &str,
    status: Option<&PluginStatus>,
    record: Option<&PluginRecord>,
    chains: &BTreeMap<String, (Vec<String>, usize)>,
) -> Markup {
    let builds = builds(status, record);
    html! {
        h1 { "Plugin " (name) }
        p { a href={"/ui/rollouts/" (name)} { "Its rollout and decisions" } }
        h2 { "Builds" }
        table #builds {
            thead { tr { th { "" } th { "sha256" } th { "Kind" } th { "Size" } th { "Signed by" } th { "" } } }
            tbody {
                @for build in &builds {
                    tr data-role=(build.role) {
                        td { (build.role) } td.sha title=(build.sha256) { (short(&build.sha256)) }
                        td { (build.kind) }
                        td { @if let Some(size) = build.size { (size) " B" } @else { "-" } }
                        td { @if build.signers.is_empty() { "-" } @else { (build.signers.join(", ")) } }
                        td { (build.note) }
                    }
                }
            }
        }
        @if let Some(status) = status {
            h2 { "Configuration" }
            p { "sha256 " span.sha { (short(&status.config_sha256)) } ", failure policy "
                (format!("{:?}", status.failure_policy)) }
            @if let Some(file) = &status.manifest { p { "Declared in " code { (file) } } }
            pre #config { (status.config_json) }
            @if let Some(pass) = &status.preflight {
                h2 { "Pre-flight log" }
                p { "Build " span.sha { (short(&pass.sha256)) } ", configuration "
                    span.sha { (short(&pass.config_sha256)) } }
                @if pass.logs.is_empty() { p { "The module logged nothing." } }
                @else { pre #preflight-log { @for line in &pass.logs { (line) "\n" } } }
            }
        }
        h2 { "Chains" }
        @if chains.is_empty() {
            p { "In the bootstrap's slot named " code { (name) } " on each proxy (no composed mesh)." }
        } @else {
            ul { @for (listener, (chain, proxies)) in chains {
                li { code { (listener) } ": " (chain.join(" → ")) " (" (proxies) " proxies)" }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use meshplug_core::manifest::Selector;

    use super::targets_of;

    #[test]
    fn targets_are_said_plainly() {
        assert_eq!(
            targets_of(&Selector::default()),
            "every proxy (spec.targets is empty)"
        );
        let edge = Selector {
            node_ids: vec!["edge-*".into()],
            ..Selector::default()
        };
        assert_eq!(
            targets_of(&edge),
            r#"the proxies that match spec.targets {"nodeIds":["edge-*"]}"#
        );
    }
}
