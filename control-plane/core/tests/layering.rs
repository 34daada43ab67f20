//! The rollout modules are layered: each imports only modules below it, so no cycle can form
//! across them. The foundation (`decide`, `cohort`, `policy`, `record`, `signals`, `traffic`,
//! `error`) imports none of the steps.

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first; a module may import modules of a lower rank only.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("policy", 0),
    ("traffic", 1),
    ("cohort", 1),
    ("decide", 2),
    ("signals", 2),
    ("record", 3),
    ("history", 4),
    ("effects", 4),
    ("placement", 4),
    ("world", 5),
    ("health", 5),
    ("lifecycle", 6),
    ("progress", 7),
    ("releases", 8),
    ("commands", 9),
];

fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        for prefix in ["use super::", "use crate::rollout::"] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_rollout_module_imports_only_lower_layers() {
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rollout");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("src/rollout") {
        let path = entry.expect("entry").path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let mine = *rank
            .get(module)
            .unwrap_or_else(|| panic!("{module}.rs has no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(&path).expect("readable");
        for import in imports(&text) {
            let theirs = *rank
                .get(import.as_str())
                .unwrap_or_else(|| panic!("{module} imports {import}, which has no layer"));
            assert!(
                theirs < mine,
                "{module} (layer {mine}) imports {import} (layer {theirs}): a cycle could form"
            );
        }
        seen += 1;
    }
    assert_eq!(
        seen,
        LAYERS.len(),
        "every layer is a file and every file a layer"
    );
}
