//! A dynamic module that panics on a request never takes Envoy down: the panicking request gets
//! 500 from the SDK's panic barrier, the panic is counted, and the same Envoy process keeps
//! serving every other request through the same module.

use std::time::Duration;

use e2e::paths::filter_artifact;
use e2e::{Mesh, eventually};
use meshplug::store::sha256_hex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_native_filter_is_a_500_not_a_crash() {
    let panicky = filter_artifact("test/libpanicky.so").expect("test filters built");
    let mut mesh = Mesh::start_with(&["--prefer-kind", "native"])
        .await
        .expect("mesh starts");
    mesh.publish_config("authz", r#"{"panic_on": "/boom"}"#)
        .await
        .expect("config");
    mesh.publish_copy(&panicky, "libauthz.so").expect("publish");
    let sha = sha256_hex(&std::fs::read(&panicky).expect("read"));
    mesh.wait_until_acked("envoy-1", "authz", &sha).await;
    mesh.wait_until_served_by(0, "panicky").await;
    let pid = mesh.envoys[0].process().pid();

    for round in 0..3 {
        let boom = mesh.get(0, "/boom", &[]).await.expect("request");
        assert_eq!(boom.status, 500, "round {round}: the panic is answered 500");
        assert!(boom.body.contains("filter error"), "{}", boom.body);
        let fine = mesh.get(0, "/fine", &[]).await.expect("request");
        assert_eq!(fine.status, 200, "round {round}: other requests are served");
        assert_eq!(fine.header("x-meshplug-filter"), Some("panicky"));
    }

    let envoy = &mut mesh.envoys[0];
    assert_eq!(envoy.process().pid(), pid, "same Envoy process");
    assert!(envoy.process().is_running(), "Envoy survived three panics");
    let envoy = &mesh.envoys[0];
    let panics = eventually(Duration::from_secs(5), "the panic counter", || async {
        let count = envoy
            .stat_sum("meshplug_panics_authz")
            .await
            .map_err(|e| e.to_string())?;
        if count >= 3 {
            Ok(count)
        } else {
            Err(format!("{count} panics counted"))
        }
    })
    .await;
    assert_eq!(panics, 3);
}
