//! The manifest files: what is in force from each, and each refusal with file, line and field.

use std::sync::PoisonError;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use maud::html;

use super::{Ui, respond, short};

pub(super) async fn page(State(ui): State<Ui>, headers: HeaderMap) -> Html<String> {
    let files = ui.admin.manifests.as_ref().map(|catalog| {
        let catalog = catalog.read().unwrap_or_else(PoisonError::into_inner);
        catalog.files.values().cloned().collect::<Vec<_>>()
    });
    let main = html! {
        h1 { "Manifests" }
        @match &files {
            None => p { "Manifests do not govern this control plane (start it with --plugins DIR)." },
            Some(files) if files.is_empty() => p { "No manifest file was read yet." },
            Some(files) => table #manifests {
                thead { tr { th { "File" } th { "sha256" } th { "In force" } th { "Refusal" } } }
                tbody { @for file in files {
                    tr data-file=(file.file) {
                        td { code { (file.file) } }
                        td.sha { (short(&file.sha256)) }
                        td { @match &file.in_force {
                            Some((kind, name)) => { (format!("{kind:?}")) " " (name) },
                            None => "-",
                        } }
                        td.refusal { @if let Some(error) = &file.error { (error.to_string()) } }
                    }
                } }
            },
        }
    };
    respond(&headers, "Manifests", main)
}
