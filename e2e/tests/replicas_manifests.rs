//! Two replicas on etcd serving the mesh from manifests (`--plugins`, `--mesh` with
//! `--store etcd://…`), an Envoy on each. Only the leader reads the folders; the catalog in
//! force it saves is what every replica places, so the Envoy on the follower gets the same
//! listener and chain as the one on the leader. Each replica has its own folders (a checkout
//! on each host): a manifest written only to the leader's shows on the follower too. After the
//! leader is killed, the one leading next reads its folders: a plugin added there reaches both
//! Envoys, and a new build rolls out to both.

use std::time::Duration;

use e2e::composed::{ingress_chain, plugin_manifest};
use e2e::eventually;
use e2e::replicas::ReplicaSet;
use e2e::rollout::{PLUGIN, TEST_POLICY};

const WAIT: Duration = Duration::from_secs(60);
const ROUTER: &str = "envoy.filters.http.router";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_places_the_manifests_the_leader_read() {
    let mut set = ReplicaSet::start_composed(2, TEST_POLICY)
        .await
        .expect("replicas");
    let upstream = set.upstream_addr();
    let cluster = format!(
        "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: upstream}}\n\
         spec:\n  endpoints: [\"{upstream}\"]\n"
    );
    set.write_manifest("mesh", "upstream.yaml", &cluster)
        .expect("cluster");
    let listener = "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\n\
                    metadata: {name: ingress}\nspec:\n  port: 0\n  routes:\n    \
                    - {prefix: /, cluster: upstream}\n";
    set.write_manifest("mesh", "ingress.yaml", listener)
        .expect("listener");
    let authz = plugin_manifest(PLUGIN, PLUGIN, "authz", "{}", "");
    set.write_manifest("plugins", "authz.yaml", &authz)
        .expect("plugin");
    let v1 = set.publish("good").expect("publish");
    let (first_leader, first_term) = set.leader(None).await;
    // In the leader's folder alone: the follower shows what the leader read, not its own.
    set.write_manifest_on(
        first_leader,
        "plugins",
        "broken.yaml",
        "kind: Plugin\nmetadata: [",
    )
    .expect("broken");
    for replica in 0..2 {
        set.add_mesh_envoy(replica, "{tier: edge}")
            .await
            .expect("envoy");
    }
    set.wait_everywhere(&v1, WAIT).await;
    wait_chains(&set, &[PLUGIN, ROUTER]).await;
    for replica in 0..2 {
        wait_manifests(&set, replica, |files| {
            let refused = file(files, "plugins/broken.yaml")["error"]["file"].clone();
            let placed = file(files, "plugins/authz.yaml")["in_force"][1].clone();
            (refused == "plugins/broken.yaml" && placed == PLUGIN)
                .then_some(())
                .ok_or_else(|| format!("{files:?}"))
        })
        .await;
    }

    // The leader dies (and is restarted: two replicas need both to agree on a leader); the
    // next leader reads the folders and carries on from what etcd holds.
    set.kill_and_restart(first_leader).await.expect("restart");
    let leader = eventually(WAIT, "a leader in a later term", || async {
        let (leader, term) = set.leader(None).await;
        (term > first_term)
            .then_some(leader)
            .ok_or_else(|| format!("r{leader} leads in term {term}"))
    })
    .await;
    let audit = plugin_manifest("audit", PLUGIN, "stats", "{}", "");
    set.write_manifest_on(leader, "plugins", "audit.yaml", &audit)
        .expect("plugin");
    wait_chains(&set, &[PLUGIN, "audit", ROUTER]).await;
    let v2 = set.publish("good-v2").expect("publish");
    set.wait_everywhere(&v2, WAIT).await;
    wait_manifests(&set, 1 - leader, |files| {
        let placed = file(files, "plugins/audit.yaml")["in_force"][1].clone();
        (placed == "audit")
            .then_some(())
            .ok_or_else(|| format!("{files:?}"))
    })
    .await;
}

/// Waits until every Envoy runs `chain` on `ingress`.
async fn wait_chains(set: &ReplicaSet, chain: &[&str]) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    eventually(WAIT, &format!("chain {chain:?} everywhere"), || async {
        for (i, envoy) in set.envoys.iter().enumerate() {
            let got = ingress_chain(&http, envoy)
                .await
                .map_err(|e| e.to_string())?;
            if got != chain {
                return Err(format!("envoy-{i} runs {got:?}"));
            }
        }
        Ok(())
    })
    .await;
}

/// Waits until replica `replica`'s `/api/v1/manifests` files satisfy `check`.
async fn wait_manifests(
    set: &ReplicaSet,
    replica: usize,
    check: impl Fn(&serde_json::Value) -> Result<(), String>,
) {
    eventually(WAIT, &format!("the manifests on r{replica}"), || async {
        let manifests = set
            .get(replica, "/api/v1/manifests")
            .await
            .map_err(|e| e.to_string())?;
        check(&manifests["files"])
    })
    .await;
}

fn file<'a>(files: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    files
        .as_array()
        .and_then(|files| files.iter().find(|f| f["file"] == name))
        .unwrap_or(&serde_json::Value::Null)
}
