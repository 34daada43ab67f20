use super::*;
use crate::catalog::{ScannedFile, reconcile};

fn plugin(name: &str, phase: &str, priority: i32, listeners: &str) -> ScannedFile {
    ScannedFile {
        file: format!("plugins/{name}.yaml"),
        text: format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\nspec:\n  \
             artifact: {name}\n  phase: {phase}\n  priority: {priority}\n  listeners: [{listeners}]\n"
        ),
    }
}

fn listener(name: &str) -> ScannedFile {
    ScannedFile {
        file: format!("mesh/{name}.yaml"),
        text: format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {{name: {name}}}\nspec:\n  \
             port: 0\n  routes: [{{directResponse: {{status: 200}}}}]\n"
        ),
    }
}

fn served(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// (plugins as (name, phase, priority, listeners), served, listener, expected chain)
#[test]
fn chains_are_ordered_by_phase_then_priority_then_name() {
    type Case<'a> = (
        &'a [(&'a str, &'a str, i32, &'a str)],
        &'a [&'a str],
        &'a str,
        &'a [&'a str],
    );
    let cases: &[Case<'_>] = &[
        // Phase beats priority and name.
        (
            &[
                ("zz-authn", "authn", 100, ""),
                ("aa-custom", "custom", -5, ""),
                ("ratelimit", "authz", 0, ""),
            ],
            &["zz-authn", "aa-custom", "ratelimit"],
            "a",
            &["zz-authn", "ratelimit", "aa-custom"],
        ),
        // Within a phase, lower priority first, then name.
        (
            &[
                ("b", "stats", 1, ""),
                ("a", "stats", 1, ""),
                ("c", "stats", -1, ""),
            ],
            &["a", "b", "c"],
            "a",
            &["c", "a", "b"],
        ),
        // Not served to this proxy: not in its chain.
        (
            &[("authz", "authn", 0, ""), ("ratelimit", "authz", 0, "")],
            &["ratelimit"],
            "a",
            &["ratelimit"],
        ),
        // Bound to another listener.
        (
            &[("authz", "authn", 0, "b"), ("ratelimit", "authz", 0, "a")],
            &["authz", "ratelimit"],
            "a",
            &["ratelimit"],
        ),
        (&[], &[], "a", &[]),
    ];
    for (plugins, served_names, on, expected) in cases {
        let mut files = vec![listener("a"), listener("b")];
        files.extend(plugins.iter().map(|(n, p, prio, l)| plugin(n, p, *prio, l)));
        let catalog = reconcile(&Catalog::new(), &files);
        assert_eq!(catalog.errors().count(), 0, "{:?}", catalog.files);
        let names: Vec<String> = chain(&catalog, on, &served(served_names))
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names, *expected,
            "plugins {plugins:?}, served {served_names:?}"
        );
    }
}

#[test]
fn a_plan_has_every_listener_and_cluster() {
    let files = vec![
        listener("a"),
        listener("b"),
        plugin("authz", "authn", 0, "a"),
    ];
    let catalog = reconcile(&Catalog::new(), &files);
    let plan = plan(&catalog, &served(&["authz"]));
    let names: Vec<&str> = plan.listeners.iter().map(|l| l.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(plan.listeners[0].chain.len(), 1);
    assert!(plan.listeners[1].chain.is_empty());
    assert!(plan.clusters.is_empty());
}
