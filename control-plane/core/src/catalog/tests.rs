use super::*;

fn plugin(name: &str, phase: &str, listeners: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata:\n  name: {name}\nspec:\n  \
         artifact: {name}\n  phase: {phase}\n  listeners: [{listeners}]\n"
    )
}

fn listener(name: &str, cluster: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata:\n  name: {name}\nspec:\n  \
         port: 0\n  routes:\n    - prefix: /\n      cluster: {cluster}\n"
    )
}

fn cluster(name: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  \
         endpoints: [\"127.0.0.1:8080\"]\n"
    )
}

fn scan(files: &[(&str, String)]) -> Vec<ScannedFile> {
    files
        .iter()
        .map(|(file, text)| ScannedFile {
            file: file.to_string(),
            text: text.clone(),
        })
        .collect()
}

fn good() -> Vec<ScannedFile> {
    scan(&[
        ("mesh/backend.yaml", cluster("backend")),
        ("mesh/ingress.yaml", listener("ingress", "backend")),
        ("plugins/authz.yaml", plugin("authz", "authn", "ingress")),
    ])
}

#[test]
fn a_consistent_folder_is_in_force() {
    let catalog = reconcile(&Catalog::new(), &good());
    assert_eq!(catalog.errors().count(), 0);
    assert!(catalog.plugins.contains_key("authz"));
    assert!(catalog.listeners.contains_key("ingress"));
    assert!(catalog.clusters.contains_key("backend"));
    assert_eq!(
        catalog.files["plugins/authz.yaml"].in_force,
        Some((ManifestKind::Plugin, "authz".into()))
    );
}

#[test]
fn a_broken_edit_keeps_the_previous_version() {
    let before = reconcile(&Catalog::new(), &good());
    let mut files = good();
    files[2].text = files[2].text.replace("phase: authn", "phase: nope");
    let after = reconcile(&before, &files);
    assert_eq!(after.plugins["authz"], before.plugins["authz"]);
    let status = &after.files["plugins/authz.yaml"];
    let error = status.error.as_ref().expect("refused");
    assert_eq!(error.field, "spec.phase");
    assert_eq!(error.line, Some(7));
    assert!(status.in_force.is_some(), "the old version stays in force");
}

#[test]
fn a_broken_new_file_is_reported_and_not_in_force() {
    let mut files = good();
    files.push(ScannedFile {
        file: "plugins/new.yaml".into(),
        text: "kind: [".into(),
    });
    let catalog = reconcile(&Catalog::new(), &files);
    let status = &catalog.files["plugins/new.yaml"];
    assert!(status.error.is_some());
    assert_eq!(status.in_force, None);
    assert_eq!(catalog.plugins.len(), 1);
}

#[test]
fn dangling_references_are_refused_with_the_field() {
    let files = scan(&[
        ("mesh/ingress.yaml", listener("ingress", "missing")),
        ("plugins/authz.yaml", plugin("authz", "authn", "nowhere")),
    ]);
    let catalog = reconcile(&Catalog::new(), &files);
    let listener_error = catalog.files["mesh/ingress.yaml"].error.clone();
    let listener_error = listener_error.expect("dangling cluster");
    assert_eq!(listener_error.field, "spec.routes[0].cluster");
    assert_eq!(listener_error.line, Some(9));
    let plugin_error = catalog.files["plugins/authz.yaml"].error.clone();
    let plugin_error = plugin_error.expect("dangling listener");
    assert_eq!(plugin_error.field, "spec.listeners[0]");
    assert!(plugin_error.message.contains("no Listener named `nowhere`"));
    assert!(catalog.plugins.is_empty() && catalog.listeners.is_empty());
}

#[test]
fn a_name_defined_twice_stays_with_the_file_that_had_it() {
    let before = reconcile(&Catalog::new(), &good());
    let mut files = good();
    files.insert(
        0,
        ScannedFile {
            file: "plugins/a-copy.yaml".into(),
            text: plugin("authz", "stats", "ingress"),
        },
    );
    let after = reconcile(&before, &files);
    let error = after.files["plugins/a-copy.yaml"].error.clone();
    let error = error.expect("duplicate refused");
    assert!(
        error
            .message
            .contains("already defined in plugins/authz.yaml")
    );
    assert_eq!(error.field, "metadata.name");
    assert_eq!(after.plugins["authz"], before.plugins["authz"]);
}

#[test]
fn a_removed_file_takes_its_manifest_along() {
    let before = reconcile(&Catalog::new(), &good());
    let mut files = good();
    files.pop();
    let after = reconcile(&before, &files);
    assert!(after.plugins.is_empty());
    assert!(!after.files.contains_key("plugins/authz.yaml"));
}

#[test]
fn a_file_may_change_its_kind() {
    let before = reconcile(&Catalog::new(), &good());
    let mut files = good();
    files[0].text = cluster("backend");
    files.push(ScannedFile {
        file: "mesh/other.yaml".into(),
        text: cluster("other"),
    });
    let middle = reconcile(&before, &files);
    files[3].text = plugin("other", "custom", "");
    let after = reconcile(&middle, &files);
    assert!(after.plugins.contains_key("other"));
    assert!(!after.clusters.contains_key("other"));
    assert_eq!(after.errors().count(), 0);
}

#[test]
fn a_record_reads_back_as_the_same_catalog() {
    let catalog = reconcile(&Catalog::new(), &good());
    let record = catalog.record();
    assert_eq!(record.texts.len(), 3);
    assert_eq!(Catalog::from_record(&record), catalog);
}

#[test]
fn a_record_keeps_the_version_in_force_and_the_refusal() {
    let before = reconcile(&Catalog::new(), &good());
    let mut files = good();
    files[2].text = files[2].text.replace("phase: authn", "phase: nope");
    let after = reconcile(&before, &files);
    let record = after.record();
    assert_eq!(
        record.texts["plugins/authz.yaml"],
        good()[2].text,
        "the text in force is the previous one, not the refused edit"
    );
    let json = serde_json::to_vec(&record).expect("serializes");
    let back: CatalogRecord = serde_json::from_slice(&json).expect("deserializes");
    let read = Catalog::from_record(&back);
    assert_eq!(read, after);
    let error = read.files["plugins/authz.yaml"].error.as_ref();
    assert_eq!(error.map(|e| e.field.as_str()), Some("spec.phase"));
}

#[test]
fn an_empty_record_is_an_empty_catalog() {
    assert_eq!(
        Catalog::from_record(&CatalogRecord::default()),
        Catalog::new()
    );
}

fn caller(name: &str, callouts: &str) -> String {
    format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata:\n  name: {name}\nspec:\n  \
         artifact: {name}\n  callouts: [{callouts}]\n"
    )
}

#[test]
fn a_plugin_calling_a_declared_cluster_is_in_force() {
    let files = scan(&[
        ("plugins/httpbin.yaml", cluster("httpbin")),
        ("plugins/auth.yaml", caller("auth", "httpbin")),
    ]);
    let catalog = reconcile(&Catalog::new(), &files);
    assert_eq!(catalog.errors().count(), 0, "{:?}", catalog.files);
    assert_eq!(catalog.plugins["auth"].spec.callouts, ["httpbin"]);
}

#[test]
fn a_plugin_calling_a_cluster_nobody_declares_is_refused_naming_both() {
    let files = scan(&[
        ("plugins/httpbin.yaml", cluster("httpbin")),
        ("plugins/auth.yaml", caller("auth", "httpbin, ledger")),
    ]);
    let catalog = reconcile(&Catalog::new(), &files);
    assert!(!catalog.plugins.contains_key("auth"));
    let error = catalog.files["plugins/auth.yaml"]
        .error
        .clone()
        .expect("refused");
    assert_eq!(error.field, "spec.callouts[1]");
    assert_eq!(error.line, Some(7));
    assert!(
        error.message.contains("`auth`") && error.message.contains("`ledger`"),
        "{error}"
    );
}

#[test]
fn removing_the_called_cluster_keeps_neither_it_nor_the_caller_silently() {
    let both = scan(&[
        ("plugins/httpbin.yaml", cluster("httpbin")),
        ("plugins/auth.yaml", caller("auth", "httpbin")),
    ]);
    let before = reconcile(&Catalog::new(), &both);
    let after = reconcile(&before, &both[1..]);
    // The caller's version in force needs the cluster too: it is refused, not kept dangling.
    assert!(!after.plugins.contains_key("auth"));
    assert!(after.files["plugins/auth.yaml"].error.is_some());
}

#[test]
fn confined_to_clusters_a_plugin_or_listener_is_refused_and_clusters_stay() {
    let catalog = reconcile(&Catalog::new(), &good()).confine(&[ManifestKind::Cluster], "why");
    assert!(catalog.plugins.is_empty() && catalog.listeners.is_empty());
    assert!(catalog.clusters.contains_key("backend"));
    assert_eq!(catalog.files["mesh/backend.yaml"].error, None);
    let refused = catalog.files["plugins/authz.yaml"]
        .error
        .clone()
        .expect("refused");
    assert_eq!((refused.field.as_str(), refused.line), ("kind", Some(2)));
    assert_eq!(refused.message, "Plugin: why");
    assert_eq!(catalog.files["plugins/authz.yaml"].in_force, None);
    // What replicas share holds only what is in force.
    assert_eq!(
        catalog.record().texts.keys().collect::<Vec<_>>(),
        ["mesh/backend.yaml"]
    );
}
