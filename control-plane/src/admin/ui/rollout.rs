//! A rollout: its stage and cohorts, each gate with the numbers it last read (5xx, slow share
//! and heartbeats of canary against baseline with their intervals, samples against the
//! minimum, time in the step, ACKs), plots of the looks, the controls, and the decision
//! timeline in words.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;

use super::plot::{Series, svg};
use super::words::{ratio, sentence, signals, when};
use super::{Ui, respond, short, trusted};
use crate::ingest::unix_ms;
use crate::rollout::Policy;
use crate::rollout::state::{Decision, PluginRecord};
use meshplug_core::rollout::decide::{Stage, millis, stage_needs};

/// How many decisions the timeline shows.
const TIMELINE: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    /// What the last control did, shown once after its redirect.
    #[serde(default)]
    done: Option<String>,
}

/// What the page reads, taken under the engine lock.
struct Snapshot {
    record: Option<PluginRecord>,
    policy: Policy,
    decisions: Vec<Decision>,
    /// Per pushed proxy: whether it ACKed the rollout's version.
    acks: Vec<(String, bool)>,
}

pub(super) async fn page(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Html<String> {
    let snapshot = {
        let engine = ui.engine();
        let record = engine.plugins().get(&name).cloned();
        let acks = record
            .as_ref()
            .and_then(|r| r.rollout.as_ref())
            .map(|rollout| {
                rollout
                    .pushed
                    .keys()
                    .map(|id| {
                        let node = engine.nodes().get(id);
                        let acked = node.and_then(|n| n.acked(&name)) == Some(&rollout.to.version);
                        (id.clone(), acked)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            policy: engine.policy_for(&name),
            decisions: engine.decisions_of(&name, 0, TIMELINE, true),
            record,
            acks,
        }
    };
    let main = render(&name, &snapshot, done.done.as_deref(), unix_ms());
    respond(&headers, &format!("Rollout {name}"), main)
}

fn render(name: &str, snapshot: &Snapshot, done: Option<&str>, now_ms: u64) -> Markup {
    let Some(record) = &snapshot.record else {
        return html! { h1 { "Rollout " (name) } p { "Nothing was published for this plugin yet." } };
    };
    let rollout = record.rollout.as_ref();
    let state = match rollout {
        None => "stable",
        Some(r) if r.paused.is_some() => "paused",
        Some(_) => "progressing",
    };
    html! {
        h1 { "Rollout " (name) " " span.badge #state data-state=(state) { (state) } }
        @if let Some(done) = done { p.done #done { (done) } }
        p {
            "Last good " span.sha #last-good { (record.last_good.as_ref().map_or("-".into(), |r| short(&r.sha256))) }
            @if let Some(r) = rollout {
                ", rolling out " span.sha #rolling { (short(&r.to.sha256)) }
                ", stage " span #stage { (stage_name(r.stage)) }
            }
            " · " a href={"/ui/plugins/" (name)} { "plugin" }
        }
        @if let Some(paused) = rollout.and_then(|r| r.paused.as_ref()) {
            p.refusal #paused { "Paused: " (paused.reason) }
        }
        @if let Some(r) = rollout {
            (cohorts(r, &snapshot.acks))
            (gates(snapshot, r, now_ms))
        }
        (super::controls::buttons(name, record))
        (plots(&snapshot.decisions, rollout.map(|r| r.id.as_str())))
        (quarantine(record))
        h2 { "Decisions" }
        ol #timeline reversed {
            @for decision in snapshot.decisions.iter().rev() {
                li data-action=(decision.action) {
                    time { (when(decision.at_ms)) } " "
                    strong { (decision.action) }
                    @if let Some(gate) = &decision.gate { " (" (format!("{gate:?}").to_lowercase()) " gate)" }
                    ": " (sentence(decision))
                }
            }
        }
    }
}

fn stage_name(stage: Stage) -> String {
    match stage {
        Stage::Step(i) => format!("step {}", i + 1),
        Stage::Bake => "bake".into(),
    }
}

fn cohorts(rollout: &crate::rollout::state::Rollout, acks: &[(String, bool)]) -> Markup {
    let list = |nodes: &std::collections::BTreeSet<String>| match nodes.is_empty() {
        true => "-".to_string(),
        false => nodes.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    html! {
        h2 { "Cohorts" }
        p { "Canary: " span #canary { (list(&rollout.canary)) } }
        p { "Baseline: " span #baseline { (list(&rollout.baseline)) }
            @if rollout.baseline.is_empty() { " (compared with the same proxies before the push)" } }
        p { "Running it: "
            @for (node, acked) in acks {
                span.node data-acked=(acked) { (node) @if !acked { " (no ACK yet)" } } " "
            }
        }
    }
}

fn gates(snapshot: &Snapshot, rollout: &crate::rollout::state::Rollout, now_ms: u64) -> Markup {
    let policy = &snapshot.policy;
    let (min_duration, min_requests) = stage_needs(policy, rollout.stage);
    let elapsed = now_ms.saturating_sub(rollout.stage_started_ms);
    let left = min_duration.saturating_sub(elapsed);
    let acked = snapshot.acks.iter().filter(|(_, a)| *a).count();
    let look = snapshot
        .decisions
        .iter()
        .rev()
        .find(|d| d.action == "look" && d.rollout == rollout.id);
    let z = policy.traffic.z;
    html! {
        h2 { "Gates" }
        table #gates {
            tr { th { "Acceptance" } td { (acked) " of " (snapshot.acks.len()) " proxies ACKed (deadline " (format!("{:?}", policy.ack_deadline)) ")" } }
            tr { th { "Step" } td #step-time {
                (elapsed / 1000) " s in the stage; "
                @if left > 0 { (left / 1000) " s left of " (min_duration / 1000) " s" } @else { "its least duration is over" }
                @if min_requests > 0 { "; needs " (min_requests) " canary requests" }
            } }
            tr { th { "Failing looks" } td #failing-looks { (rollout.failing_looks) " in a row (" (policy.failing_looks) " fail the step)" } }
        }
        @if let Some(look) = look {
            @if let (Some(canary), Some(baseline)) = (&look.canary_totals, &look.baseline_totals) {
                h3 { "Last traffic look, " (when(look.at_ms)) }
                table #traffic {
                    thead { tr { th { "Signal" } th { "Canary" } th { "Baseline" } } }
                    tbody {
                        @for ((label, c_part, c_whole), (_, b_part, b_whole)) in signals(canary).into_iter().zip(signals(baseline)) {
                            tr data-signal=(label) { th { (label) } td { (ratio(c_part, c_whole, z)) } td { (ratio(b_part, b_whole, z)) } }
                        }
                        tr { th { "samples" } td { (canary.completed) } td { (baseline.completed) " (" (policy.traffic.min_samples) " each needed)" } }
                    }
                }
                p #verdict { "Verdict: " (look.reason) }
            }
        } @else {
            p { "No traffic look yet (one every " (millis(policy.look_interval)) " ms in a stage that needs requests, or in the bake)." }
        }
    }
}

/// The looks of `rollout` (or of the latest rollout with looks) as three plots.
fn plots(decisions: &[Decision], rollout: Option<&str>) -> Markup {
    let latest = rollout.map(str::to_string).or_else(|| {
        decisions
            .iter()
            .rev()
            .find(|d| d.action == "look")
            .map(|d| d.rollout.clone())
    });
    let Some(id) = latest else {
        return html! {};
    };
    let looks: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.action == "look" && d.rollout == id)
        .filter(|d| d.canary_totals.is_some() && d.baseline_totals.is_some())
        .collect();
    if looks.is_empty() {
        return html! {};
    }
    let charts: Vec<String> = (0..3)
        .map(|i| {
            let line = |label, colour, pick: &dyn Fn(&Decision) -> Option<(u64, u64)>| Series {
                label,
                colour,
                points: looks
                    .iter()
                    .filter_map(|d| {
                        pick(d)
                            .filter(|(_, w)| *w > 0)
                            .map(|(p, w)| (d.at_ms, p as f64 / w as f64))
                    })
                    .collect(),
            };
            let canary = line("canary", "#c0392b", &|d| {
                d.canary_totals
                    .as_ref()
                    .map(|t| (signals(t)[i].1, signals(t)[i].2))
            });
            let baseline = line("baseline", "#2471a3", &|d| {
                d.baseline_totals
                    .as_ref()
                    .map(|t| (signals(t)[i].1, signals(t)[i].2))
            });
            let title = ["5xx ratio", "slow share", "bypassing the filter"][i];
            svg(title, &[canary, baseline])
        })
        .collect();
    html! {
        h2 { "Canary against baseline, look by look" }
        div #plots { @for chart in charts { (trusted(chart)) } }
    }
}

fn quarantine(record: &PluginRecord) -> Markup {
    html! {
        @if !record.quarantine.is_empty() {
            h2 { "Quarantine" }
            ul #quarantine {
                @for (version, q) in &record.quarantine {
                    li { span.sha { (short(version)) } ": " (q.reason) " (" (when(q.at_ms)) ")" }
                }
            }
        }
    }
}
