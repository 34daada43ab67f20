use std::collections::HashMap;

use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;

use super::*;

const LDS: &str = type_url::LISTENER;
const ECDS: &str = type_url::EXTENSION_CONFIG;

fn snapshot(type_url: &str, entries: &[(&str, &[u8])]) -> Snapshot {
    let mut snap = Snapshot::new();
    for (name, value) in entries {
        let body = Any {
            type_url: type_url.into(),
            value: value.to_vec(),
        };
        snap.set_resource(type_url, name, body);
    }
    snap
}

fn request(type_url: &str, subscribe: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.into(),
        resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn step(
    state: &mut DeltaState,
    req: DeltaDiscoveryRequest,
    snap: &Snapshot,
) -> Outcome<DeltaDiscoveryResponse> {
    let mut out = Outcome::default();
    state.on_request(req, snap, &mut out).expect("valid");
    out
}

fn names(response: &DeltaDiscoveryResponse) -> Vec<&str> {
    response.resources.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn an_empty_first_listener_request_is_a_wildcard_answered_in_full_then_acked() {
    let mut st = DeltaState::new(1, NodeInfo::default());
    let snap = snapshot(LDS, &[("a", b"1"), ("b", b"2")]);
    let out = step(&mut st, request(LDS, &[], ""), &snap);
    let (response, _) = &out.responses[0];
    assert_eq!(names(response), ["a", "b"]);
    let nonce = response.nonce.clone();
    let out = step(&mut st, request(LDS, &[], &nonce), &snap);
    assert!(out.responses.is_empty(), "nothing changed");
    assert!(matches!(&out.events[0], XdsEvent::Ack { resources, .. } if resources.len() == 2));
}

#[test]
fn only_changes_and_removals_are_sent() {
    let mut st = DeltaState::new(1, NodeInfo::default());
    step(
        &mut st,
        request(LDS, &[], ""),
        &snapshot(LDS, &[("a", b"1"), ("b", b"2")]),
    );
    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(LDS, &[("a", b"1"), ("b", b"3")]), &mut out);
    let (response, _) = &out.responses[0];
    assert_eq!(names(response), ["b"]);
    assert!(response.removed_resources.is_empty());
    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(LDS, &[("b", b"3")]), &mut out);
    let (response, _) = &out.responses[0];
    assert!(response.resources.is_empty());
    assert_eq!(response.removed_resources, ["a"]);
}

#[test]
fn a_nacked_version_is_not_sent_again_until_it_changes() {
    let mut st = DeltaState::new(1, NodeInfo::default());
    let bad = snapshot(ECDS, &[("authz", b"bad")]);
    let out = step(&mut st, request(ECDS, &["authz"], ""), &bad);
    let nonce = out.responses[0].0.nonce.clone();
    let nack = DeltaDiscoveryRequest {
        error_detail: Some(RpcStatus {
            code: 3,
            message: "Failed to load".into(),
            details: vec![],
        }),
        ..request(ECDS, &[], &nonce)
    };
    let out = step(&mut st, nack, &bad);
    assert!(out.responses.is_empty(), "no NACK loop");
    assert!(matches!(&out.events[0], XdsEvent::Nack { error, .. } if error == "Failed to load"));
    let mut out = Outcome::default();
    st.on_snapshot(&snapshot(ECDS, &[("authz", b"good")]), &mut out);
    assert_eq!(names(&out.responses[0].0), ["authz"]);
}

#[test]
fn named_types_are_not_wildcards_and_unsubscribe_forgets() {
    let mut st = DeltaState::new(1, NodeInfo::default());
    let snap = snapshot(ECDS, &[("authz", b"1"), ("ratelimit", b"2")]);
    let out = step(&mut st, request(ECDS, &[], ""), &snap);
    assert!(
        out.responses.is_empty(),
        "an empty ECDS request selects nothing"
    );
    let out = step(&mut st, request(ECDS, &["ratelimit"], ""), &snap);
    assert_eq!(names(&out.responses[0].0), ["ratelimit"]);
    let unsubscribe = DeltaDiscoveryRequest {
        resource_names_unsubscribe: vec!["ratelimit".into()],
        ..request(ECDS, &[], "")
    };
    assert!(step(&mut st, unsubscribe, &snap).responses.is_empty());
    let out = step(&mut st, request(ECDS, &["ratelimit"], ""), &snap);
    assert_eq!(
        names(&out.responses[0].0),
        ["ratelimit"],
        "sent again after resubscribing"
    );
}

#[test]
fn a_reconnecting_node_is_not_sent_what_it_holds() {
    let snap = snapshot(LDS, &[("a", b"1"), ("b", b"2")]);
    let mut first = DeltaState::new(1, NodeInfo::default());
    let out = step(&mut first, request(LDS, &[], ""), &snap);
    let held: HashMap<String, String> = out.responses[0]
        .0
        .resources
        .iter()
        .filter(|r| r.name == "a")
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    let mut again = DeltaState::new(2, NodeInfo::default());
    let reconnect = DeltaDiscoveryRequest {
        initial_resource_versions: held,
        ..request(LDS, &[], "")
    };
    let out = step(&mut again, reconnect, &snap);
    assert_eq!(names(&out.responses[0].0), ["b"]);
}

#[test]
fn an_empty_wildcard_is_answered_once() {
    let mut st = DeltaState::new(1, NodeInfo::default());
    let mut empty = Snapshot::new();
    empty.set_resource(LDS, "x", Any::default());
    empty.remove_resource(LDS, "x");
    let out = step(&mut st, request(LDS, &[], ""), &empty);
    assert_eq!(out.responses.len(), 1, "ends Envoy's initial fetch");
    let mut out = Outcome::default();
    st.on_snapshot(&empty, &mut out);
    assert!(out.responses.is_empty());
}
