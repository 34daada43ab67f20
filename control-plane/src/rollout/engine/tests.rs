//! The engine with a fake clock, an in-memory fleet and a real state folder.

use std::time::Duration;

use xds::ResourceVersion;

use super::*;
use crate::artifact::ArtifactKind;
use crate::rollout::Command;
use crate::rollout::policy::Step;
use crate::rollout::state::StateFiles;
use meshplug_core::rollout::decide::Stage;

pub(super) const PLUGIN: &str = "authz";

/// A Wasm release whose sha starts with `tag` (the other rollout tests use it too).
pub(crate) fn release(tag: &str) -> Release {
    Release::for_tests(tag)
}

pub(super) fn policy() -> Policy {
    Policy {
        steps: vec![
            Step::nodes(1, Duration::from_secs(2), 20),
            Step::percent(100, Duration::from_secs(2), 20),
        ],
        bake: Duration::from_secs(1),
        look_interval: Duration::from_millis(500),
        failing_looks: 2,
        settle: Duration::ZERO,
        ..Policy::default()
    }
}

pub(super) struct Harness {
    pub(super) engine: Engine,
    pub(super) cache: Arc<SnapshotCache>,
    pub(super) dir: tempfile::TempDir,
}

pub(super) fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        cluster: "test".into(),
        ..NodeInfo::default()
    }
}

impl Harness {
    pub(super) fn new(nodes: &[&str]) -> Self {
        Self::with_policy(policy(), nodes)
    }

    pub(super) fn with_policy(policy: Policy, nodes: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Arc::new(SnapshotCache::new());
        let files = StateFiles::open(dir.path()).expect("state files");
        let metrics = Arc::new(RolloutMetrics::unregistered());
        let mut engine =
            Engine::open(policy, files, Arc::clone(&cache), metrics, None).expect("engine");
        for id in nodes {
            engine.on_connect(&node(id), 0);
        }
        Self { engine, cache, dir }
    }

    pub(super) fn served(&self, node: &str) -> Option<String> {
        let snapshot = self.cache.snapshot(node);
        snapshot
            .resources(type_url::EXTENSION_CONFIG)
            .and_then(|r| r.version(PLUGIN))
            .map(String::from)
    }

    /// The node answers what it is served: an ACK, or a NACK with `error`.
    pub(super) fn answer(&mut self, node_id: &str, now: u64, error: Option<&str>) {
        let version = self.served(node_id).expect("something served");
        let (stream, node, type_url, nonce) = (
            1,
            node(node_id),
            type_url::EXTENSION_CONFIG.into(),
            "n".into(),
        );
        let resources = vec![ResourceVersion {
            name: PLUGIN.into(),
            version,
        }];
        let version = "v".to_string();
        let event = match error {
            None => XdsEvent::Ack {
                stream,
                node,
                type_url,
                version,
                nonce,
                resources,
            },
            Some(error) => XdsEvent::Nack {
                stream,
                node,
                type_url,
                version,
                nonce,
                resources,
                error: error.into(),
            },
        };
        self.engine.on_event(&event, now);
        self.engine.tick(now);
    }

    pub(super) fn ack(&mut self, node_id: &str, now: u64) {
        self.answer(node_id, now, None);
    }

    pub(super) fn nack(&mut self, node_id: &str, now: u64) {
        self.answer(node_id, now, Some("Failed to configure base Wasm plugin"));
    }

    pub(super) fn ack_all(&mut self, nodes: &[&str], now: u64) {
        for id in nodes {
            self.ack(id, now);
        }
    }

    pub(super) fn record(&self) -> PluginRecord {
        self.engine
            .plugins()
            .get(PLUGIN)
            .cloned()
            .expect("plugin known")
    }

    pub(super) fn flush(&mut self, node_id: &str, completed: u64, errors: u64, now: u64) {
        let sample = FlushSample {
            completed,
            rq_5xx: errors,
            uptime_s: Some(now / 1000 + 100),
            ..FlushSample::default()
        };
        self.engine.on_metrics(node_id, &sample, now);
    }
}

pub(super) const FLEET: [&str; 4] = ["n1", "n2", "n3", "n4"];

/// A first version goes everywhere, is ACKed, and is promoted by hand before its bake ends
/// (`first_version_tests` watch a first version's bake): it is the last good one.
pub(super) fn with_last_good() -> Harness {
    let mut h = Harness::new(&FLEET);
    h.engine
        .release(PLUGIN, release("a"), 10)
        .expect("release a");
    for id in FLEET {
        assert_eq!(h.served(id), Some(release("a").version), "{id}");
    }
    h.ack_all(&FLEET, 20);
    assert_eq!(
        h.record().rollout.map(|r| r.stage),
        Some(Stage::Bake),
        "a first version is watched for the bake"
    );
    h.engine
        .command(PLUGIN, Command::Promote { full: true }, 20)
        .expect("promote a");
    assert_eq!(h.record().last_good, Some(release("a")));
    h
}

/// Version b rolling out from last good a, ACKed by its one canary at 1 010 ms.
fn b_acked_by_its_canary() -> (Harness, String) {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = canary_of(&h);
    h.ack(&canary, 1_010);
    (h, canary)
}

/// The first decision-log entry with `action`.
fn logged(h: &Harness, action: &str) -> Decision {
    let log = h.engine.decisions().expect("log");
    log.into_iter()
        .find(|d| d.action == action)
        .unwrap_or_else(|| panic!("no {action} in the decision log"))
}

pub(super) fn canary_of(h: &Harness) -> String {
    let rollout = h.record().rollout.expect("rollout");
    assert_eq!(rollout.canary.len(), 1);
    rollout.canary.into_iter().next().expect("one canary")
}

#[test]
fn a_new_version_reaches_only_the_canary_first() {
    let mut h = with_last_good();
    assert_eq!(
        h.engine.release(PLUGIN, release("b"), 100).expect("b"),
        ReleaseOutcome::Started
    );
    let canary = canary_of(&h);
    for id in FLEET {
        let expected = if id == canary {
            release("b")
        } else {
            release("a")
        };
        assert_eq!(h.served(id), Some(expected.version), "{id}");
    }
    assert_eq!(h.record().rollout.expect("rollout").baseline.len(), 1);
}

#[test]
fn a_nack_rolls_back_quarantines_and_logs() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 100).expect("b");
    let canary = canary_of(&h);
    h.nack(&canary, 150);
    let record = h.record();
    assert!(record.rollout.is_none());
    assert!(record.quarantine.contains_key(&release("b").version));
    assert_eq!(h.served(&canary), Some(release("a").version));
    let err = h
        .engine
        .release(PLUGIN, release("b"), 200)
        .expect_err("quarantined");
    assert!(err.to_string().contains("quarantined"), "{err}");
    let log = h.engine.decisions().expect("log");
    let rollback = log.iter().find(|d| d.action == "rollback").expect("logged");
    assert_eq!(
        rollback.gate,
        Some(crate::rollout::decide::Gate::Acceptance)
    );
    assert!(
        rollback.reason.contains("Failed to configure"),
        "{}",
        rollback.reason
    );
    h.ack(&canary, 180);
    assert!(
        h.engine
            .decisions()
            .expect("log")
            .iter()
            .any(|d| d.action == "rolled_back")
    );
}

#[test]
fn a_good_version_is_promoted_through_every_step() {
    let mut h = with_last_good();
    // Traffic before the push: the last step (no baseline cohort left) compares with it.
    for now in (100..1_000).step_by(250) {
        for id in FLEET {
            h.flush(id, 30, 0, now);
        }
    }
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let canary = canary_of(&h);
    h.ack(&canary, 1_050);
    let mut now = 1_000;
    while h.record().rollout.is_some() && now < 30_000 {
        now += 250;
        for id in FLEET {
            h.flush(id, 10, 0, now);
        }
        for id in FLEET {
            if h.served(id) == Some(release("b").version) {
                h.ack(id, now);
            }
        }
        h.engine.tick(now);
    }
    assert_eq!(
        h.record().last_good,
        Some(release("b")),
        "promoted by {now} ms"
    );
    for id in FLEET {
        assert_eq!(h.served(id), Some(release("b").version));
    }
    let actions: Vec<String> = h
        .engine
        .decisions()
        .expect("log")
        .into_iter()
        .map(|d| d.action)
        .collect();
    assert!(
        actions.contains(&"advance".to_string()) && actions.contains(&"promote".to_string()),
        "{actions:?}"
    );
}

#[test]
fn canary_5xx_rolls_back_after_k_failing_looks() {
    let (mut h, canary) = b_acked_by_its_canary();
    let mut now = 1_000;
    while h.record().rollout.is_some() && now < 20_000 {
        now += 250;
        for id in FLEET {
            let errors = if id == canary { 10 } else { 0 };
            h.flush(id, 10, errors, now);
        }
        h.engine.tick(now);
    }
    let record = h.record();
    assert!(record.rollout.is_none() && record.quarantine.contains_key(&release("b").version));
    let rollback = logged(&h, "rollback");
    assert_eq!(rollback.gate, Some(crate::rollout::decide::Gate::Traffic));
    assert_eq!(h.served(&canary), Some(release("a").version));
}

#[test]
fn no_metrics_pauses_and_never_rolls_back() {
    let (mut h, _) = b_acked_by_its_canary();
    for now in (1_250..60_000).step_by(250) {
        h.engine.tick(now);
    }
    let rollout = h.record().rollout.expect("still rolling out");
    assert!(
        rollout
            .paused
            .is_some_and(|p| p.reason.contains("metrics feed down"))
    );
    assert!(h.record().quarantine.is_empty());
}

#[test]
fn a_canary_that_drops_and_comes_back_gets_the_last_good_version() {
    let (mut h, canary) = b_acked_by_its_canary();
    let closed = XdsEvent::StreamClosed {
        stream: 1,
        node: node(&canary),
    };
    h.engine.on_event(&closed, 2_000);
    h.engine.on_connect(&node(&canary), 3_000);
    assert_eq!(h.served(&canary), Some(release("a").version));
    let rollback = logged(&h, "rollback");
    assert_eq!(rollback.gate, Some(crate::rollout::decide::Gate::Liveness));
}

#[test]
fn a_version_arriving_mid_rollout_queues() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    assert_eq!(
        h.engine.release(PLUGIN, release("c"), 1_100).expect("c"),
        ReleaseOutcome::Queued
    );
    assert_eq!(h.record().rollout.expect("rollout").to, release("b"));
    h.engine
        .command(PLUGIN, Command::Rollback, 1_200)
        .expect("rollback");
    let record = h.record();
    assert_eq!(record.rollout.expect("c started").to, release("c"));
    assert!(record.queued.is_none());
}

#[test]
fn state_survives_a_restart_and_nothing_is_pushed_twice() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 1_000).expect("b");
    let before = h.record();
    let files = StateFiles::open(h.dir.path()).expect("reopen");
    let cache = Arc::new(SnapshotCache::new());
    let metrics = Arc::new(RolloutMetrics::unregistered());
    let mut again =
        Engine::open(policy(), files, Arc::clone(&cache), metrics, None).expect("engine");
    assert_eq!(again.plugins().get(PLUGIN), Some(&before));
    assert_eq!(
        again.release(PLUGIN, release("b"), 2_000).expect("same b"),
        ReleaseOutcome::Unchanged
    );
    let starts = again
        .decisions()
        .expect("log")
        .iter()
        .filter(|d| d.action == "start")
        .count();
    assert_eq!(starts, 2, "a and b, once each");
}

#[test]
fn retry_lifts_the_quarantine_and_rolls_out_again() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 100).expect("b");
    let canary = canary_of(&h);
    h.nack(&canary, 150);
    let message = h
        .engine
        .command(
            PLUGIN,
            Command::Retry {
                version: "b000".into(),
            },
            300,
        )
        .expect("retry");
    assert!(message.contains("Started"), "{message}");
    assert!(h.record().quarantine.is_empty());
    assert!(
        h.engine
            .command(
                PLUGIN,
                Command::Retry {
                    version: "zz".into()
                },
                400
            )
            .is_err()
    );
}

#[test]
fn publishing_the_last_good_version_again_cancels_the_rollout() {
    let mut h = with_last_good();
    h.engine.release(PLUGIN, release("b"), 100).expect("b");
    let canary = canary_of(&h);
    assert_eq!(
        h.engine.release(PLUGIN, release("a"), 200).expect("a"),
        ReleaseOutcome::Unchanged
    );
    let record = h.record();
    assert!(record.rollout.is_none() && record.quarantine.is_empty());
    assert_eq!(h.served(&canary), Some(release("a").version));
}

#[test]
fn an_automatic_pause_lifts_when_metrics_return_and_a_manual_one_does_not() {
    let (mut h, _) = b_acked_by_its_canary();
    for now in (1_250..20_000).step_by(250) {
        h.engine.tick(now);
    }
    assert!(
        h.record()
            .rollout
            .expect("rollout")
            .paused
            .is_some_and(|p| !p.manual)
    );
    for now in (20_000..22_000).step_by(250) {
        for id in FLEET {
            h.flush(id, 30, 0, now);
        }
        h.engine.tick(now);
    }
    assert!(
        h.record().rollout.expect("rollout").paused.is_none(),
        "lifted"
    );

    h.engine
        .command(PLUGIN, Command::Pause, 22_000)
        .expect("pause");
    let stage = h.record().rollout.expect("rollout").stage;
    for now in (22_000..60_000).step_by(250) {
        for id in FLEET {
            h.flush(id, 30, 0, now);
            if h.served(id) == Some(release("b").version) {
                h.ack(id, now);
            }
        }
        h.engine.tick(now);
    }
    let rollout = h.record().rollout.expect("still rolling out");
    assert_eq!(rollout.stage, stage, "a manual pause holds the stage");
    assert!(rollout.paused.is_some_and(|p| p.manual));
    h.engine
        .command(PLUGIN, Command::Resume, 60_000)
        .expect("resume");
    assert!(h.record().rollout.expect("rollout").paused.is_none());
}

#[test]
fn an_acked_version_superseded_before_the_tick_becomes_the_last_good() {
    let mut h = Harness::with_policy(Policy::immediate(), &["n1"]);
    h.engine.release(PLUGIN, release("a"), 10).expect("a");
    let version = h.served("n1").expect("a served");
    let ack = XdsEvent::Ack {
        stream: 1,
        node: node("n1"),
        type_url: type_url::EXTENSION_CONFIG.into(),
        version: "v".into(),
        nonce: "n".into(),
        resources: vec![ResourceVersion {
            name: PLUGIN.into(),
            version,
        }],
    };
    // The ACK, then the next version, with no tick in between.
    h.engine.on_event(&ack, 20);
    h.engine.release(PLUGIN, release("b"), 30).expect("b");
    let record = h.record();
    assert_eq!(record.last_good, Some(release("a")));
    assert_eq!(
        record.rollout.expect("b rolls out").from,
        Some(release("a"))
    );
}

#[test]
fn a_dynamic_module_reaches_only_proxies_on_the_envoy_version_it_was_built_for() {
    let mut h = Harness::with_policy(Policy::immediate(), &[]);
    for (id, version) in [("on-140", "1.40.0"), ("on-139", "1.39.2")] {
        let info = NodeInfo {
            user_agent_version: Some(version.into()),
            ..node(id)
        };
        h.engine.on_connect(&info, 0);
    }
    h.engine.release(PLUGIN, release("w"), 10).expect("wasm");
    h.ack_all(&["on-140", "on-139"], 20);
    let wasm = h.served("on-139").expect("wasm everywhere");
    let native = Release {
        kind: ArtifactKind::Native,
        envoy_version: Some("1.40.0".into()),
        failure_policy: Default::default(),
        ..release("n")
    };
    h.engine
        .release(PLUGIN, native.clone(), 30)
        .expect("native");
    assert_eq!(h.served("on-140"), Some(native.version.clone()));
    assert_eq!(
        h.served("on-139"),
        Some(wasm),
        "the 1.39 proxy keeps its last good version"
    );
    h.ack("on-140", 40);
    let record = h.record();
    assert_eq!(
        record.last_good,
        Some(native),
        "promoted on the proxies that can run it"
    );
    assert!(record.rollout.is_none());
}
