use std::sync::Arc;

use xds::{NodeInfo, ResourceVersion, SnapshotCache, XdsEvent, type_url};

use super::*;
use crate::rollout::Policy;
use crate::rollout::metrics::RolloutMetrics;
use crate::rollout::signals::FlushSample;
use crate::rollout::state::StateFiles;

fn engine(dir: &std::path::Path) -> Engine {
    let files = StateFiles::open(dir).expect("state");
    let cache = Arc::new(SnapshotCache::new());
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut engine =
        Engine::open(Policy::immediate(), files, cache, metrics, None).expect("engine");
    engine.on_connect(&node(), 0);
    engine
}

fn node() -> NodeInfo {
    NodeInfo {
        id: "n1".into(),
        ..NodeInfo::default()
    }
}

fn resources() -> Vec<ResourceVersion> {
    vec![ResourceVersion {
        name: "authz".into(),
        version: "v1".into(),
    }]
}

fn sent(engine: &mut Engine, at: u64) {
    let event = XdsEvent::Sent {
        stream: 1,
        node: node(),
        type_url: type_url::EXTENSION_CONFIG.into(),
        version: "x".into(),
        nonce: "1".into(),
        resources: resources(),
    };
    engine.on_event(&event, at);
}

fn acked(engine: &mut Engine, at: u64) {
    let event = XdsEvent::Ack {
        stream: 1,
        node: node(),
        type_url: type_url::EXTENSION_CONFIG.into(),
        version: "x".into(),
        nonce: "1".into(),
        resources: resources(),
    };
    engine.on_event(&event, at);
}

fn flush(engine: &mut Engine, reloads: u64, errors: u64, at: u64) {
    let mut sample = FlushSample::default();
    if reloads > 0 {
        sample.reloads.insert("authz".into(), reloads);
    }
    if errors > 0 {
        sample.load_errors.insert("authz".into(), errors);
    }
    engine.on_metrics("n1", &sample, at);
}

fn applied(engine: &Engine) -> Option<String> {
    engine
        .nodes()
        .get("n1")?
        .filters
        .get("authz")?
        .applied
        .clone()
}

#[test]
fn applied_needs_the_ack_and_a_clean_reload_after_the_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut e = engine(dir.path());
    flush(&mut e, 1, 0, 5);
    sent(&mut e, 10);
    acked(&mut e, 20);
    assert_eq!(
        applied(&e),
        None,
        "a reload before the send is an older version's"
    );
    flush(&mut e, 1, 1, 30);
    assert_eq!(
        applied(&e),
        None,
        "a reload with a load error is a rejection"
    );
    flush(&mut e, 1, 0, 40);
    assert_eq!(applied(&e), Some("v1".into()));
}

#[test]
fn a_reload_reported_before_the_ack_counts_once_the_ack_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut e = engine(dir.path());
    sent(&mut e, 10);
    flush(&mut e, 1, 0, 15);
    assert_eq!(applied(&e), None);
    acked(&mut e, 20);
    assert_eq!(applied(&e), Some("v1".into()));
}
