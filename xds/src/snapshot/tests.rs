use std::collections::BTreeSet;

use super::*;

fn any(value: &[u8]) -> Any {
    Any {
        type_url: "type.googleapis.com/test.T".into(),
        value: value.to_vec(),
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn identical_resource_is_not_a_change() {
    let mut snap = Snapshot::new();
    assert!(snap.set_resource("t", "a", any(b"1")));
    assert!(!snap.set_resource("t", "a", any(b"1")));
    assert!(snap.set_resource("t", "a", any(b"2")));
}

#[test]
fn version_depends_only_on_the_selected_resources() {
    let mut snap = Snapshot::new();
    snap.set_resource("t", "a", any(b"1"));
    snap.set_resource("t", "b", any(b"1"));
    let typed = snap.resources("t").expect("type present");
    let (v_a, sel) = typed.select(&names(&["a"]), false);
    assert_eq!(sel.len(), 1);

    snap.set_resource("t", "b", any(b"2"));
    let typed = snap.resources("t").expect("type present");
    let (v_a_again, _) = typed.select(&names(&["a"]), false);
    let (v_all, sel_all) = typed.select(&BTreeSet::new(), true);
    assert_eq!(v_a, v_a_again, "a change to b must not change a's version");
    assert_ne!(v_a, v_all);
    assert_eq!(sel_all.len(), 2);
}

#[test]
fn selecting_nothing_that_exists_is_empty() {
    let mut snap = Snapshot::new();
    snap.set_resource("t", "a", any(b"1"));
    let (_, sel) = snap
        .resources("t")
        .expect("type present")
        .select(&names(&["zzz"]), false);
    assert!(sel.is_empty());
}

#[test]
fn remove_reports_presence() {
    let mut snap = Snapshot::new();
    snap.set_resource("t", "a", any(b"1"));
    assert!(snap.remove_resource("t", "a"));
    assert!(!snap.remove_resource("t", "a"));
    assert!(!snap.remove_resource("other", "a"));
}

#[test]
fn put_resources_replaces_a_type_or_only_adds() {
    let body = |v: &[u8]| Any {
        type_url: "t".into(),
        value: v.to_vec(),
    };
    let a = PreparedResource::new("a1", body(b"a"));
    let b = PreparedResource::new("b1", body(b"b"));
    let mut snap = Snapshot::new();
    assert!(snap.put_resources("t", [("a", &a), ("b", &b)], true));
    assert!(
        !snap.put_resources("t", [("a", &a)], false),
        "nothing new, nothing removed"
    );
    assert_eq!(snap.resources("t").map(|r| r.len()), Some(2));
    assert!(snap.put_resources("t", [("a", &a)], true));
    let names: Vec<&str> = snap
        .resources("t")
        .map(|r| r.names().collect())
        .unwrap_or_default();
    assert_eq!(names, ["a"]);
    assert!(!snap.put_resources("t", [("a", &a)], true));
}

#[test]
fn replacing_a_type_with_nothing_makes_it_known_and_empty() {
    let mut snap = Snapshot::new();
    assert!(snap.put_resources("t", std::iter::empty(), true));
    let (_, selected) = snap
        .resources("t")
        .expect("an empty type is known: a wildcard subscription to it is answered")
        .select(&BTreeSet::new(), true);
    assert!(selected.is_empty());
    assert!(
        !snap.put_resources("t", std::iter::empty(), true),
        "no change"
    );
    // Adding without replacing the type does not invent it.
    assert!(!snap.put_resources("u", std::iter::empty(), false));
    assert!(snap.resources("u").is_none());
}
