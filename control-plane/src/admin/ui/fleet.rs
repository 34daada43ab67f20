//! The fleet: every proxy, per filter desired / ACKed / applied / state and Envoy's NACK or the
//! agent's fetch failure, with counts by state, filtered by a GET form (no script needed).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::super::{NodeView, node_views};
use super::{Ui, respond, short};
use crate::client::filter_state;

/// The filters of the fleet page; empty means any.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FleetQuery {
    /// Part of the node id.
    #[serde(default)]
    q: String,
    #[serde(default)]
    cluster: String,
    /// `key=value` of the node metadata.
    #[serde(default)]
    label: String,
    #[serde(default)]
    filter: String,
    /// `SYNCED`, `FAILING`, `NACKED`, …
    #[serde(default)]
    state: String,
}

/// One line: a node and one of its filters.
#[derive(Debug, PartialEq)]
pub(super) struct Row {
    pub node: String,
    pub cluster: String,
    pub envoy: String,
    pub connected: bool,
    pub filter: String,
    pub desired: String,
    pub acked: String,
    pub applied: &'static str,
    pub state: &'static str,
    /// Envoy's NACK message, the agent's fetch failure or why the version is failing.
    pub message: Option<String>,
}

pub(super) async fn page(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(query): Query<FleetQuery>,
) -> Html<String> {
    let views = {
        let engine = ui.engine();
        node_views(&engine)
    };
    let rows: Vec<Row> = views.iter().flat_map(rows_of).collect();
    let counts = count_states(&rows);
    let shown: Vec<&Row> = rows
        .iter()
        .filter(|row| query.matches(row, &views))
        .collect();
    respond(&headers, "Fleet", render(&query, &counts, &shown))
}

/// The lines of one node: one per filter, or one with `-` when it runs none.
pub(super) fn rows_of(view: &NodeView) -> Vec<Row> {
    let node = &view.node;
    let delivery = serde_json::to_value(view.delivery).unwrap_or(Value::Null);
    let delivery = delivery.as_str().unwrap_or("local");
    let base = |filter: &str| Row {
        node: node.id.clone(),
        cluster: node.cluster.clone(),
        envoy: node.envoy_version.clone().unwrap_or_else(|| "-".into()),
        connected: node.connected,
        filter: filter.to_string(),
        desired: "-".into(),
        acked: "-".into(),
        applied: "-",
        state: "-",
        message: None,
    };
    if node.filters.is_empty() {
        return vec![base("-")];
    }
    node.filters
        .iter()
        .map(|(name, state)| {
            let json = serde_json::to_value(state).unwrap_or(Value::Null);
            let message = state
                .last_nack
                .as_ref()
                .map(|n| format!("last NACK (of {}): {}", short(&n.version), n.error))
                .or_else(|| {
                    state
                        .last_fetch_failure
                        .as_ref()
                        .map(|f| format!("fetch failed: {}", f.error))
                })
                .or_else(|| {
                    state
                        .failing_now()
                        .map(|f| format!("failing: {}", f.reason))
                });
            Row {
                desired: state.desired.as_deref().map_or("-".into(), short),
                acked: state.acked.as_deref().map_or("-".into(), short),
                applied: state.applied_state(),
                state: filter_state(&json, delivery),
                message,
                ..base(name)
            }
        })
        .collect()
}

fn count_states(rows: &[Row]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for row in rows.iter().filter(|r| r.state != "-") {
        *counts.entry(row.state).or_insert(0) += 1;
    }
    counts
}

impl FleetQuery {
    fn matches(&self, row: &Row, views: &[NodeView]) -> bool {
        let label = match self.label.split_once('=') {
            None if self.label.is_empty() => true,
            None => false,
            Some((key, value)) => views
                .iter()
                .find(|v| v.node.id == row.node)
                .is_some_and(|v| {
                    v.node.metadata.get(key.trim()).map(String::as_str) == Some(value.trim())
                }),
        };
        label
            && row.node.contains(self.q.trim())
            && (self.cluster.is_empty() || row.cluster == self.cluster)
            && (self.filter.is_empty() || row.filter == self.filter)
            && (self.state.is_empty() || row.state.eq_ignore_ascii_case(self.state.trim()))
    }
}

fn render(query: &FleetQuery, counts: &BTreeMap<&'static str, usize>, rows: &[&Row]) -> Markup {
    html! {
        h1 { "Fleet" }
        p.counts {
            @for (state, count) in counts {
                a.state href={"/ui/?state=" (state)} data-state=(state) { (state) " " strong { (count) } }
                " "
            }
        }
        form.filters method="get" action="/ui/" {
            input name="q" placeholder="node id" value=(query.q);
            input name="cluster" placeholder="cluster" value=(query.cluster);
            input name="label" placeholder="label key=value" value=(query.label);
            input name="filter" placeholder="filter" value=(query.filter);
            input name="state" placeholder="state" value=(query.state);
            button type="submit" { "Filter" }
        }
        table #fleet {
            thead { tr {
                th { "Node" } th { "Cluster" } th { "Envoy" } th { "Up" } th { "Filter" }
                th { "Desired" } th { "ACKed" } th { "Applied" } th { "State" }
            } }
            tbody {
                @for row in rows {
                    tr data-node=(row.node) data-filter=(row.filter) {
                        td { (row.node) } td { (row.cluster) } td { (row.envoy) }
                        td { @if row.connected { "yes" } @else { "no" } }
                        td {
                            @if row.filter == "-" { "-" }
                            @else { a href={"/ui/plugins/" (row.filter)} { (row.filter) } }
                        }
                        td.sha { (row.desired) } td.sha { (row.acked) } td { (row.applied) }
                        td.state data-state=(row.state) { (row.state) }
                    }
                    @if let Some(message) = &row.message {
                        tr.message { td colspan="9" { (message) } }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No proxy matches." } }
    }
}
