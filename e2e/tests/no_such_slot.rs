//! A build whose name matches no slot of the proxy's listeners (folder mode, where the
//! bootstrap fixes the slots) can never be ACKed: the rollback says so, naming the slots the
//! proxy has, instead of only that it "did not ACK". meshplug learns the slots from the ECDS
//! names each proxy asks for.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};

const POLICY: &str = r#"{"steps": [{"percent": 100}], "bake": "0s", "crashWindow": "0s",
  "ackDeadline": "2s", "supersede": true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_for_no_slot_is_rolled_back_saying_no_listener_has_the_slot() {
    let policy = tempfile::NamedTempFile::new().expect("policy file");
    std::fs::write(policy.path(), POLICY).expect("policy");
    let path = policy.path().display().to_string();
    let mut mesh = Mesh::start_with(&["--rollout-policy", &path])
        .await
        .expect("mesh starts");
    let build = filter_artifact("authz.wasm").expect("make filters");
    mesh.publish_copy(&build, "nosuchslot.wasm").expect("build");
    let reason = eventually(Duration::from_secs(30), "the rollback", || async {
        let log = mesh
            .control_plane
            .api("/api/v1/rollouts/nosuchslot/decisions")
            .await
            .map_err(|e| e.to_string())?;
        let decisions = log.as_array().cloned().unwrap_or_default();
        decisions
            .iter()
            .filter_map(|d| d["reason"].as_str())
            .find(|r| r.contains("did not ACK"))
            .map(str::to_string)
            .ok_or_else(|| format!("{decisions:?}"))
    })
    .await;
    assert!(
        reason.contains("none of its listeners has a slot for this plugin")
            && reason.contains("(its ECDS slots: authz, header-rewrite, ratelimit)"),
        "{reason}"
    );
    assert!(mesh.envoys[0].process().is_running());
}
