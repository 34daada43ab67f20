use serde_json::json;

use super::*;

#[test]
fn filter_state_follows_desired_sent_acked_and_nack() {
    let v = |desired: Option<&str>, sent: Option<&str>, acked: Option<&str>, nack: Option<&str>| {
        json!({"desired": desired, "sent": sent, "acked": acked,
               "last_nack": nack.map(|n| json!({"version": n, "error": "boom"}))})
    };
    assert_eq!(
        filter_state(&v(Some("b"), Some("b"), Some("b"), None), "local"),
        "SYNCED"
    );
    assert_eq!(
        filter_state(&v(Some("b"), Some("b"), Some("a"), Some("b")), "local"),
        "NACKED"
    );
    assert_eq!(
        filter_state(&v(Some("b"), Some("b"), Some("a"), Some("x")), "local"),
        "SENT"
    );
    assert_eq!(
        filter_state(&v(Some("b"), Some("a"), Some("a"), None), "local"),
        "NOT SENT"
    );
    assert_eq!(filter_state(&v(None, None, None, None), "local"), "-");
    let sent = v(Some("b"), Some("b"), Some("a"), None);
    assert_eq!(filter_state(&sent, "agent"), "FETCHING");
    let mut failed = sent.clone();
    failed["last_fetch_failure"] = json!({"version": "b", "error": "connection refused"});
    assert_eq!(filter_state(&failed, "agent"), "FETCH FAILED");
}

#[test]
fn status_table_has_a_line_per_node_and_filter_and_the_nack_message() {
    let nodes = json!({"nodes": [
        {"id": "envoy-1", "cluster": "edge", "envoy_version": "1.40.0", "connected": true,
         "filters": {"authz": {"desired": "aaaaaaaaaaaaaaaa:c", "sent": "aaaaaaaaaaaaaaaa:c",
                               "acked": "aaaaaaaaaaaaaaaa:c", "last_nack": null}}},
        {"id": "envoy-2", "cluster": "edge", "envoy_version": "1.40.0", "connected": false,
         "filters": {"authz": {"desired": "bbbbbbbbbbbbbbbb:c", "sent": "bbbbbbbbbbbbbbbb:c",
                               "acked": "aaaaaaaaaaaaaaaa:c",
                               "last_nack": {"version": "bbbbbbbbbbbbbbbb:c",
                                             "error": "Failed to configure base Wasm plugin"}}}},
        {"id": "envoy-3", "cluster": "edge", "connected": true, "filters": {}}
    ]});
    let table = status_table(&nodes);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NODE"));
    assert!(
        lines[1].contains("envoy-1") && lines[1].ends_with("SYNCED"),
        "{table}"
    );
    assert!(
        lines[1].contains("aaaaaaaaaaaa "),
        "shas are cut to 12: {table}"
    );
    assert!(
        lines[2].contains("envoy-2") && lines[2].contains(" no ") && lines[2].ends_with("NACKED")
    );
    assert_eq!(
        lines[3],
        "  last NACK: Failed to configure base Wasm plugin"
    );
    assert!(
        lines[4].starts_with("envoy-3") && lines[4].contains(" - "),
        "{table}"
    );
}

#[test]
fn plugins_table_shows_kind_sha_and_the_last_rejection() {
    let plugins = json!({"plugins": [
        {"name": "authz", "artifact": {"kind": "native", "sha256": "0123456789abcdef"},
         "config_sha256": "fedcba9876543210", "publishes": 2,
         "last_rejection": {"reason": "not a ELF shared object file: no ELF magic number"}},
        {"name": "ratelimit", "artifact": null, "config_sha256": "x", "publishes": 0,
         "last_rejection": null}
    ]});
    let table = plugins_table(&plugins);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].starts_with("authz")
            && lines[1].contains("native")
            && lines[1].contains("0123456789ab ")
    );
    assert!(lines[1].ends_with("no ELF magic number"));
    assert!(lines[2].starts_with("ratelimit") && lines[2].ends_with("  -"));
}

#[test]
fn manifests_table_shows_refusals_with_file_line_and_field() {
    let manifests = serde_json::json!({"enabled": true, "files": [
        {"file": "plugins/authz.yaml", "sha256": "x", "in_force": ["Plugin", "authz"],
         "error": {"file": "plugins/authz.yaml", "line": 7, "column": 10, "field": "spec.phase",
                   "message": "unknown variant `first`"}},
        {"file": "mesh/ingress.yaml", "sha256": "y", "in_force": ["Listener", "ingress"]}
    ]});
    let table = manifests_table(&manifests);
    assert!(
        table.contains("REFUSED (previous version in force)"),
        "{table}"
    );
    assert!(
        table.contains("plugins/authz.yaml:7: spec.phase: unknown variant `first`"),
        "{table}"
    );
    assert!(table.contains("in force"), "{table}");
    let off = manifests_table(&serde_json::json!({"enabled": false, "files": []}));
    assert!(off.contains("--plugins"));
}

#[test]
fn replicas_table_names_the_leader_its_term_and_the_nodes_each_holds() {
    let replicas = json!({
        "enabled": true, "me": "r1", "role": "follower",
        "leader": {"id": "r0", "term": 42, "admin": "http://10.0.0.1:18080"},
        "members": {
            "r0": {"id": "r0", "admin": "http://10.0.0.1:18080", "xds": "10.0.0.1:18000"},
            "r1": {"id": "r1", "admin": "http://10.0.0.2:18080", "xds": "10.0.0.2:18000"}
        },
        "nodes": {"r0": ["envoy-a"], "r1": ["envoy-b", "envoy-c"]}
    });
    let table = replicas_table(&replicas);
    assert!(table.starts_with("leader: r0 (term 42)\n"), "{table}");
    let r0 = table.lines().find(|l| l.starts_with("r0")).expect("r0 row");
    assert!(r0.contains("leader") && r0.contains("envoy-a"), "{r0}");
    let r1 = table.lines().find(|l| l.starts_with("r1")).expect("r1 row");
    assert!(r1.contains("follower") && r1.contains("envoy-b,envoy-c") && r1.contains("(this one)"));
    assert_eq!(
        replicas_table(&json!({"enabled": false})),
        "",
        "nothing without replicas"
    );
}

#[test]
fn status_table_shows_a_failing_version_and_why() {
    let filter = |failing: serde_json::Value| {
        json!({"desired": "aaaa:c", "sent": "aaaa:c", "acked": "aaaa:c", "applied": "aaaa:c",
               "last_nack": null, "failing": failing})
    };
    let why = "5xx ratio: canary 1.000 (90/90) vs baseline 0.000 (0/300)";
    let nodes = json!({"nodes": [
        {"id": "envoy-1", "connected": true,
         "filters": {"authz": filter(json!({"version": "aaaa:c", "reason": why,
                                              "since_unix_ms": 1}))}},
        {"id": "envoy-2", "connected": true,
         "filters": {"authz": filter(json!({"version": "older:c", "reason": "old",
                                              "since_unix_ms": 1}))}},
    ]});
    let table = status_table(&nodes);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].contains(" failing ") && lines[1].ends_with("FAILING"),
        "{table}"
    );
    assert_eq!(lines[2], format!("  failing: {why}"));
    assert!(
        lines[3].starts_with("envoy-2")
            && lines[3].contains(" yes ")
            && lines[3].ends_with("SYNCED"),
        "a verdict on another version does not count: {table}"
    );
}
