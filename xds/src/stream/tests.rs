use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;

use super::*;

const T: &str = "type.googleapis.com/test.T";

fn snapshot(entries: &[(&str, &[u8])]) -> Snapshot {
    let mut snap = Snapshot::new();
    for (name, value) in entries {
        snap.set_resource(
            T,
            name,
            Any {
                type_url: T.into(),
                value: value.to_vec(),
            },
        );
    }
    snap
}

fn request(names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: T.into(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn nack(names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        error_detail: Some(RpcStatus {
            code: 3,
            message: "bad module".into(),
            details: vec![],
        }),
        ..request(names, version, nonce)
    }
}

fn state() -> StreamState {
    StreamState::new(7, NodeInfo::default())
}

fn step(state: &mut StreamState, req: DiscoveryRequest, snap: &Snapshot) -> Outcome {
    let mut out = Outcome::default();
    state
        .on_request(req, snap, &mut out)
        .expect("valid request");
    out
}

#[test]
fn named_subscription_waits_until_a_resource_exists() {
    let mut st = state();
    let out = step(&mut st, request(&["a"], "", ""), &Snapshot::new());
    assert!(out.responses.is_empty());

    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(&[("a", b"1")]), &mut out);
    assert_eq!(out.responses.len(), 1);
    assert_eq!(out.responses[0].0.resources.len(), 1);
}

#[test]
fn ack_is_reported_and_answered_with_nothing() {
    let mut st = state();
    let snap = snapshot(&[("a", b"1"), ("b", b"2")]);
    let out = step(&mut st, request(&["a"], "", ""), &snap);
    let first = &out.responses[0].0;
    assert_eq!(first.resources.len(), 1, "only the named resource is sent");

    let out = step(
        &mut st,
        request(&["a"], &first.version_info, &first.nonce),
        &snap,
    );
    assert!(out.responses.is_empty());
    assert!(
        matches!(&out.events[..], [XdsEvent::Ack { version, .. }] if *version == first.version_info)
    );
}

#[test]
fn nack_is_reported_and_never_resent() {
    let mut st = state();
    let snap = snapshot(&[("a", b"bad")]);
    let out = step(&mut st, request(&["a"], "", ""), &snap);
    let sent = out.responses[0].0.clone();

    let out = step(&mut st, nack(&["a"], "", &sent.nonce), &snap);
    assert!(out.responses.is_empty(), "a NACKed version is not resent");
    match &out.events[..] {
        [XdsEvent::Nack { version, error, .. }] => {
            assert_eq!(version, &sent.version_info);
            assert_eq!(error, "bad module");
        }
        other => panic!("expected one NACK, got {other:?}"),
    }
    let mut out = Outcome::default();
    st.on_snapshot(&snap, &mut out);
    assert!(out.responses.is_empty());

    st.on_snapshot(&snapshot(&[("a", b"good")]), &mut out);
    assert_eq!(out.responses.len(), 1, "a new version is sent after a NACK");
}

#[test]
fn stale_nonce_is_ignored() {
    let mut st = state();
    let out = step(&mut st, request(&["a"], "", ""), &snapshot(&[("a", b"1")]));
    let old_nonce = out.responses[0].0.nonce.clone();
    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(&[("a", b"2")]), &mut out);
    assert_ne!(out.responses[0].0.nonce, old_nonce);

    let out = step(
        &mut st,
        nack(&["a"], "", &old_nonce),
        &snapshot(&[("a", b"2")]),
    );
    assert!(out.events.is_empty(), "a stale NACK reports nothing");
    assert!(out.responses.is_empty());
}

#[test]
fn wildcard_gets_everything_and_an_empty_first_answer() {
    let mut st = state();
    let mut empty_type = Snapshot::new();
    empty_type.set_resource(T, "x", Any::default());
    empty_type.remove_resource(T, "x");
    let out = step(&mut st, request(&[], "", ""), &empty_type);
    assert_eq!(out.responses.len(), 1);
    assert!(out.responses[0].0.resources.is_empty());

    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(&[("a", b"1"), ("b", b"2")]), &mut out);
    assert_eq!(out.responses[0].0.resources.len(), 2);
}

#[test]
fn widening_a_subscription_sends_the_new_selection() {
    let mut st = state();
    let snap = snapshot(&[("a", b"1"), ("b", b"2")]);
    let out = step(&mut st, request(&["a"], "", ""), &snap);
    let first = out.responses[0].0.clone();
    let out = step(
        &mut st,
        request(&["a", "b"], &first.version_info, &first.nonce),
        &snap,
    );
    assert_eq!(out.responses.len(), 1);
    assert_eq!(out.responses[0].0.resources.len(), 2);
}

#[test]
fn missing_type_url_is_an_error() {
    let mut st = state();
    let mut out = Outcome::default();
    let req = DiscoveryRequest::default();
    assert!(matches!(
        st.on_request(req, &Snapshot::new(), &mut out),
        Err(XdsError::MissingTypeUrl)
    ));
}

#[test]
fn a_changed_subscription_is_reported_once() {
    let mut st = state();
    let snap = snapshot(&[("a", b"1")]);
    let subscribed = |out: &Outcome| -> Vec<Vec<String>> {
        out.events
            .iter()
            .filter_map(|e| match e {
                XdsEvent::Subscribed { names, .. } => Some(names.clone()),
                _ => None,
            })
            .collect()
    };
    let out = step(&mut st, request(&["b", "a"], "", ""), &snap);
    assert_eq!(subscribed(&out), [vec!["a".to_string(), "b".to_string()]]);
    let first = &out.responses[0].0;
    let out = step(
        &mut st,
        request(&["a", "b"], &first.version_info, &first.nonce),
        &snap,
    );
    assert!(subscribed(&out).is_empty(), "unchanged: {:?}", out.events);
    let out = step(
        &mut st,
        request(&["a"], &first.version_info, &first.nonce),
        &snap,
    );
    assert_eq!(subscribed(&out), [vec!["a".to_string()]]);
}
