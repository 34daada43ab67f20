//! 200 simulated Envoy nodes on ADS against the real control plane: every reading node ends on
//! each new version, NACKing nodes get each version exactly once (no NACK loop), and one node
//! that stops reading holds up nobody.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::load::{LoadConfig, LoadRun, NodeBehaviour, percentiles};
use e2e::{Mesh, eventually};

const NODES: usize = 200;
const CHANGES: usize = 8;
/// How long the others may take to converge on a change, slow reader or not.
const BOUND: Duration = Duration::from_secs(5);
/// Immediate rollout that tolerates the simulated NACKing share.
const SCALE_POLICY: &str = r#"{"steps": [{"percent": 100}], "bake": "0s", "crashWindow": "0s",
  "ackDeadline": "2s", "maxRejectShare": 0.2, "supersede": true}"#;
/// A minimal proxy-wasm filter that accepts any configuration and lets every request through:
/// it passes the pre-flight, and no Envoy runs it here.
fn module() -> Vec<u8> {
    let text = meshplug_preflight::testing::proxy_wasm_wat(
        "(i32.const 1)",
        "(i32.const 1)",
        "(i32.const 0)",
        "",
    );
    wat::parse_str(text).expect("WAT")
}

fn config(change: usize) -> String {
    // 64 KiB of padding fills a slow reader's flow-control window on the first push.
    format!(
        r#"{{"change": {change}, "padding": "{}"}}"#,
        "x".repeat(64 * 1024)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streams_converge_without_nack_loops() {
    // Every version to every node at once; the 10% of nodes that NACK everything and the slow
    // reader that never ACKs are tolerated (they keep what they have), and a newer version
    // supersedes one still waiting: the protocol, not the rollout gates, is under test.
    let policy = tempfile::NamedTempFile::new().expect("policy file");
    std::fs::write(policy.path(), SCALE_POLICY).expect("policy");
    let policy_path = policy.path().display().to_string();
    let mesh = Mesh::start_control_plane(&["--rollout-policy", &policy_path])
        .await
        .expect("control plane starts");
    mesh.publish("load.json", config(0).as_bytes())
        .expect("config");
    mesh.publish("load.wasm", &module()).expect("module");
    let target: SocketAddr = mesh.control_plane.addrs.xds;
    let run = LoadRun::start(&LoadConfig {
        tls: None,
        target,
        nodes: NODES,
        resource_names: vec!["load".into()],
        nack_percent: 10,
        slow_readers: 1,
        id_prefix: "sim".into(),
        fetch: None,
    });
    eventually(
        Duration::from_secs(60),
        "every node to be served",
        || async {
            match run.nodes_served() {
                NODES => Ok(()),
                n => Err(format!("{n} of {NODES} served")),
            }
        },
    )
    .await;

    for change in 1..=CHANGES {
        let before = run.latest_versions();
        let t0 = Instant::now();
        mesh.publish("load.json", config(change).as_bytes())
            .expect("change");
        let converged = run
            .converge(&before, t0, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("change {change} never reached every reading node"));
        let (p50, p99, max) = percentiles(&converged.received);
        println!("change {change}: receipt p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
        assert!(
            Duration::from_secs_f64(max / 1000.0) <= BOUND,
            "change {change} took {max:.0} ms to reach every reading node"
        );
        assert_eq!(converged.acked.len(), NODES - 1 - NODES / 10);
    }

    let latest = run.latest_versions();
    for (index, (behaviour, receipts)) in run.receipts().into_iter().enumerate() {
        match behaviour {
            NodeBehaviour::SlowReader => assert_eq!(receipts.len(), 1, "it read once"),
            NodeBehaviour::Ack | NodeBehaviour::Nack => {
                assert_eq!(
                    receipts.len(),
                    CHANGES + 1,
                    "node {index} ({behaviour:?}) got each version exactly once"
                );
                assert_eq!(receipts.last().map(|r| &r.version), latest.get(&index));
            }
        }
    }
    assert!(
        run.connects().iter().all(|c| *c == 1),
        "no stream was dropped"
    );
    let nodes = mesh
        .control_plane
        .api("/api/v1/nodes")
        .await
        .expect("nodes");
    let nodes = nodes["nodes"].as_array().expect("list");
    assert_eq!(nodes.len(), NODES);
    assert!(nodes.iter().all(|n| n["connected"] == true));
    let nacked = nodes
        .iter()
        .filter(|n| !n["filters"]["load"]["last_nack"].is_null())
        .count();
    assert_eq!(
        nacked,
        NODES / 10,
        "the control plane saw every NACKing node"
    );
    let slow = nodes
        .iter()
        .find(|n| n["id"] == "sim-00000")
        .expect("the slow reader is listed");
    let handed_over = slow["filters"]["load"]["sends"].as_u64().unwrap_or(0);
    assert!(
        handed_over < (CHANGES + 1) as u64,
        "the slow reader's stream really stalled ({handed_over} responses handed over), \
         yet every other node converged within {BOUND:?}"
    );
}
