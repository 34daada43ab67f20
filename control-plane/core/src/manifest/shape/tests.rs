use std::time::{Duration, Instant};

use super::*;

#[test]
fn deep_flow_and_block_nesting_are_refused_fast() {
    let flow = format!("spec: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut block = String::from("spec:\n");
    for level in 1..200 {
        block.push_str(&" ".repeat(level));
        block.push_str("a:\n");
    }
    let dashes = format!("spec:\n{}x\n", "- ".repeat(200));
    for (case, text) in [("flow", flow), ("block", block), ("dashes", dashes)] {
        let started = Instant::now();
        let err = check_shape("plugins/deep.yaml", &text).expect_err(case);
        assert!(
            err.message.contains("a manifest may nest 64"),
            "{case}: {err}"
        );
        assert!(started.elapsed() < Duration::from_millis(500), "{case}");
    }
}

#[test]
fn ordinary_manifests_and_brackets_in_strings_pass() {
    let text = "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata:\n  name: authz\n\
                spec:\n  artifact: authz\n  config:\n    api_keys: [\"[[[[\", '{{{{']\n  \
                targets:\n    - nodeIds: [\"edge-*\"]\n";
    check_shape("plugins/authz.yaml", text).expect("ordinary");
}

#[test]
fn size_and_unreadable_files_are_refused_by_name() {
    let big = "a: b\n".repeat(MAX_BYTES / 4);
    let err = check_shape("plugins/big.yaml", &big).expect_err("big");
    assert!(err.message.contains("over the limit"), "{err}");
    let fifo = format!("{UNREADABLE}not a regular file: a FIFO");
    let err = check_shape("plugins/fifo.yaml", &fifo).expect_err("fifo");
    assert_eq!(err.message, "not a regular file: a FIFO");
}
