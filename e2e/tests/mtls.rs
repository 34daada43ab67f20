//! mTLS with certificates from `meshplug pki`: an Envoy with its node's certificate (file-based
//! SDS) receives its filter over ADS; an Envoy speaking plain TCP, one with another CA's
//! certificate, one whose certificate names another node, and a client with no certificate
//! are each refused and receive nothing. The admin API (with `--admin-client-ca`) answers the
//! CLI presenting an admin client certificate and refuses a client without one. Then the
//! control plane's certificate and the Envoy's are both rotated on disk under the live stream:
//! no stream drops, new handshakes see the new certificates, and the next push still arrives.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use e2e::pki::TestPki;
use e2e::{Mesh, eventually};
use meshplug::tls::ClientTls;
use serde_json::Value;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};
use xds::proto::{AggregatedDiscoveryServiceClient, DiscoveryRequest, Node};

const IDENTITY: &str = r#"meshplug_limit_refusals_total{limit="node_identity"}"#;
const HANDSHAKES: &str = r#"meshplug_limit_refusals_total{limit="tls_handshake"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_binds_each_node_to_its_certificate_and_rotates_under_live_streams() {
    let pki = TestPki::new(&["127.0.0.1"]).expect("pki");
    for id in ["edge-1", "edge-2"] {
        pki.issue_node(id, false).expect("node certificate");
    }
    let other = TestPki::new(&["127.0.0.1"]).expect("another CA");
    other
        .issue_node("edge-1", false)
        .expect("other node certificate");
    let mut args = pki.serve_args();
    let ca_arg = pki.path("ca.pem").display().to_string();
    args.extend(["--admin-client-ca".to_string(), ca_arg]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut mesh = Mesh::start_control_plane(&args)
        .await
        .expect("control plane");
    let ops = pki.admin_client("ops").expect("admin client certificate");
    mesh.control_plane.trust(&ops).expect("admin over mTLS");
    admin_needs_a_client_certificate(&pki, &mesh, &ops).await;
    let ca = pki.path("ca.pem");
    let dir = mesh.dir().to_path_buf();
    let sds = |name: &str| dir.join(format!("sds-{name}"));
    let good = pki
        .envoy_vars("edge-1", &ca, "127.0.0.1", &sds("edge-1"))
        .expect("vars");
    mesh.add_envoy_with("edge-1", "edge", good)
        .await
        .expect("edge-1");
    // edge-2 presents edge-1's certificate; edge-3 another CA's; edge-4 no TLS at all.
    let borrowed = pki
        .envoy_vars("edge-1", &ca, "127.0.0.1", &sds("edge-2"))
        .expect("vars");
    mesh.add_envoy_with("edge-2", "edge", borrowed)
        .await
        .expect("edge-2");
    let foreign = other
        .envoy_vars("edge-1", &ca, "127.0.0.1", &sds("edge-3"))
        .expect("vars");
    mesh.add_envoy_with("edge-3", "edge", foreign)
        .await
        .expect("edge-3");
    mesh.add_envoy("edge-4", "edge").await.expect("edge-4");

    mesh.publish_authz_config().expect("config");
    let build_a = e2e::paths::filter_artifact("test/authz-a.wasm").expect("test filters built");
    mesh.publish_copy(&build_a, "authz.wasm").expect("publish");
    mesh.wait_until_served_by(0, "authz/a").await;

    // The refused: the control plane says why, and none of them runs the filter.
    let cp = &mesh.control_plane;
    eventually(
        Duration::from_secs(20),
        "the borrowed identity refused",
        || async {
            let refused = cp.log_records("stream refused");
            let said = refused.iter().any(|r| {
                r["fields"]["node"] == "edge-2"
                    && r["fields"]["reason"]
                        .as_str()
                        .is_some_and(|why| why.contains("spiffe://meshplug/node/edge-1"))
            });
            match said && cp.metric(IDENTITY).await.map_err(|e| e.to_string())? >= 1.0 {
                true => Ok(()),
                false => Err(format!("refusals so far: {refused:?}")),
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "two handshakes refused",
        || async {
            match cp.metric(HANDSHAKES).await.map_err(|e| e.to_string())? {
                n if n >= 2.0 => Ok(()),
                n => Err(format!("{n} refused")),
            }
        },
    )
    .await;
    no_certificate_gets_nothing(&pki, &mesh).await;
    for envoy in 1..=3 {
        let (tag, _) = mesh.served_by(envoy).await.expect("request");
        assert_eq!(tag, "-", "Envoy {envoy} must not run the filter");
        let connected = mesh.envoys[envoy]
            .stat("control_plane.connected_state")
            .await
            .expect("stat");
        assert_eq!(connected, 0, "Envoy {envoy} must not be connected");
    }
    let nodes = mesh
        .control_plane
        .api("/api/v1/nodes")
        .await
        .expect("nodes");
    let known: Vec<&Value> = nodes["nodes"].as_array().expect("nodes").iter().collect();
    assert!(
        known.iter().all(|n| n["id"] == "edge-1"),
        "only edge-1 is a node: {nodes}"
    );

    rotate_both_under_the_live_stream(&pki, &mesh).await;
}

/// With `--admin-client-ca`, the admin API answers only clients with a certificate: the CLI
/// with `--ca --tls-cert --tls-key` works, a client with the CA alone is refused.
async fn admin_needs_a_client_certificate(pki: &TestPki, mesh: &Mesh, ops: &ClientTls) {
    let url = mesh.control_plane.admin_url("/api/v1/nodes");
    let anonymous = pki.http_client(None).expect("client");
    let refused = anonymous.get(&url).send().await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");
    let (cert, key) = ops.identity.clone().expect("identity");
    let output = std::process::Command::new(e2e::paths::meshplug_binary().expect("meshplug"))
        .args(["status", "-o", "json", "--admin"])
        .arg(mesh.control_plane.admin_url(""))
        .arg("--ca")
        .arg(&ops.ca)
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .output()
        .expect("meshplug status");
    assert!(output.status.success(), "{output:?}");
    let status: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(status["nodes"].is_array(), "{status}");
}

/// A TLS client with the right CA and no certificate gets no response.
async fn no_certificate_gets_nothing(pki: &TestPki, mesh: &Mesh) {
    let url = format!("https://{}", mesh.control_plane.addrs.xds);
    let tls = pki.client(None).tonic().expect("tls");
    let outcome = async {
        let channel = tonic::transport::Endpoint::from_shared(url)?
            .tls_config(tls)?
            .connect()
            .await?;
        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        let request = DiscoveryRequest {
            node: Some(Node {
                id: "edge-1".into(),
                ..Node::default()
            }),
            type_url: xds::type_url::EXTENSION_CONFIG.into(),
            ..DiscoveryRequest::default()
        };
        let mut stream = client
            .stream_aggregated_resources(tokio_stream::iter([request]))
            .await?
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
        Ok::<_, Box<dyn std::error::Error>>(first)
    }
    .await;
    match outcome {
        Err(_) | Ok(Ok(Err(_))) | Ok(Ok(Ok(None))) => {}
        Ok(Ok(Ok(Some(response)))) => panic!("a client without a certificate got {response:?}"),
        Ok(Err(_)) => panic!("the stream neither failed nor ended in 5 s"),
    }
}

async fn rotate_both_under_the_live_stream(pki: &TestPki, mesh: &Mesh) {
    let envoy = &mesh.envoys[0];
    let connects = envoy
        .stat("cluster.meshplug_xds.upstream_cx_total")
        .await
        .expect("stat");
    let server_before = server_serial(pki, mesh).await;
    let client_before = client_serials(mesh).await;
    pki.run(&["server", "--name", "127.0.0.1", "--force"])
        .expect("rotate the server certificate");
    pki.issue_node("edge-1", true)
        .expect("rotate edge-1's certificate");
    eventually(
        Duration::from_secs(20),
        "new handshakes to see the new server certificate",
        || async {
            match server_serial(pki, mesh).await {
                serial if serial != server_before => Ok(()),
                _ => Err("still the old one".to_string()),
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "Envoy to load its new certificate",
        || async {
            match client_serials(mesh).await {
                serials if serials != client_before && !serials.is_empty() => Ok(()),
                serials => Err(format!("serials {serials:?}")),
            }
        },
    )
    .await;

    let build_b = e2e::paths::filter_artifact("test/authz-b.wasm").expect("test filters built");
    mesh.publish_copy(&build_b, "authz.wasm")
        .expect("publish b");
    mesh.wait_until_served_by(0, "authz/b").await;
    let after = envoy
        .stat("cluster.meshplug_xds.upstream_cx_total")
        .await
        .expect("stat");
    assert_eq!(after, connects, "the ADS connection was never replaced");
    assert_eq!(
        envoy
            .stat("control_plane.connected_state")
            .await
            .expect("stat"),
        1
    );
    let dropped = mesh
        .control_plane
        .log_records("node disconnected")
        .into_iter()
        .filter(|r| r["fields"]["node"] == "edge-1")
        .count();
    assert_eq!(dropped, 0, "edge-1's stream never dropped");
}

/// The serial of the certificate a new TLS handshake to the xDS port is shown.
async fn server_serial(pki: &TestPki, mesh: &Mesh) -> Vec<u8> {
    let roots = meshplug::tls::read_roots(&pki.path("ca.pem")).expect("ca");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(mesh.control_plane.addrs.xds)
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let leaf = &tls.get_ref().1.peer_certificates().expect("certs")[0];
    let (_, cert) = <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<'_, _>>::from_der(leaf.as_ref())
        .expect("parse");
    cert.raw_serial().to_vec()
}

/// The serial numbers of the client certificates Envoy holds (its admin `/certs`).
async fn client_serials(mesh: &Mesh) -> BTreeSet<String> {
    let url = format!("http://{}/certs", mesh.envoys[0].admin);
    let certs: Value = reqwest::get(url)
        .await
        .expect("certs")
        .json()
        .await
        .expect("json");
    certs["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cert_chain"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["serial_number"].as_str().map(str::to_owned))
        .collect()
}
