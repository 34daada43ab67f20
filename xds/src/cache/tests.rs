use envoy_types::pb::google::protobuf::Any;

use super::*;

fn any(value: &[u8]) -> Any {
    Any {
        type_url: "type.googleapis.com/test.T".into(),
        value: value.to_vec(),
    }
}

#[tokio::test]
async fn watchers_see_changes_but_not_identical_updates() {
    let cache = SnapshotCache::new();
    let mut rx = cache.watch("g");
    assert!(cache.update("g", |s| s.set_resource("t", "a", any(b"1"))));
    assert!(rx.has_changed().expect("sender alive"));
    rx.borrow_and_update();

    assert!(!cache.update("g", |s| s.set_resource("t", "a", any(b"1"))));
    assert!(!rx.has_changed().expect("sender alive"));
}

#[tokio::test]
async fn groups_are_independent() {
    let cache = SnapshotCache::new();
    let mut rx_b = cache.watch("b");
    cache.update("a", |s| s.set_resource("t", "x", any(b"1")));
    assert!(!rx_b.has_changed().expect("sender alive"));
    assert!(cache.snapshot("b").resources("t").is_none());
    assert_eq!(cache.snapshot("a").resources("t").map(|t| t.len()), Some(1));
    rx_b.borrow_and_update();
    assert_eq!(cache.groups(), vec!["a".to_string(), "b".to_string()]);
}
