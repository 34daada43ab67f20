use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_stream::StreamExt;

use super::*;
use crate::pki::{self, Subject};
use crate::refusals::{Limit, Refusals};

/// A CA with a server certificate for 127.0.0.1 and a certificate for node `edge-1`.
fn pki_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    pki::init(dir.path(), 30, false).expect("init");
    let server = Subject::Server(vec!["127.0.0.1".into()]);
    pki::issue(dir.path(), &server, dir.path(), 30, false).expect("server");
    let node = Subject::Node("edge-1".into());
    pki::issue(dir.path(), &node, dir.path(), 30, false).expect("node");
    dir
}

fn files(dir: &Path, client_ca: bool) -> TlsFiles {
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        client_ca: client_ca.then(|| dir.join("ca.pem")),
    }
}

fn connector(ca: &Path, identity: Option<(&Path, &Path)>) -> TlsConnector {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(read_roots(ca).expect("roots"));
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert).expect("cert"), read_key(key).expect("key"))
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Serves an echo over TLS on 127.0.0.1: each accepted stream echoes what it reads.
async fn echo_server(tls: ServerTls, refusals: Arc<Refusals>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut streams = incoming_streams(listener, tls, |s| s, Some(refusals));
    tokio::spawn(async move {
        while let Some(Ok(mut stream)) = streams.next().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

type Client = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: std::net::SocketAddr, connector: &TlsConnector) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    // TLS 1.3 reports a refused client certificate after the handshake: a round trip shows it.
    tls.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await?;
    Ok(tls)
}

fn leaf_serial(client: &Client) -> Vec<u8> {
    let certs = client.get_ref().1.peer_certificates().expect("peer certs");
    let (_, cert) = <x509_parser::prelude::X509Certificate<'_> as x509_parser::prelude::FromDer<
        '_,
        _,
    >>::from_der(certs[0].as_ref())
    .expect("parse");
    cert.raw_serial().to_vec()
}

#[tokio::test]
async fn only_clients_with_a_certificate_from_the_ca_get_through() {
    let dir = pki_dir();
    let other = tempfile::tempdir().expect("tempdir");
    pki::init(other.path(), 30, false).expect("other CA");
    pki::issue(
        other.path(),
        &Subject::Node("edge-1".into()),
        other.path(),
        30,
        false,
    )
    .expect("other node");
    let refusals = Arc::new(Refusals::unregistered());
    let tls = ServerTls::load(files(dir.path(), true), &[]).expect("load");
    let addr = echo_server(tls, Arc::clone(&refusals)).await;
    let ca = dir.path().join("ca.pem");
    let (cert, key) = (
        dir.path().join("node-edge-1.pem"),
        dir.path().join("node-edge-1-key.pem"),
    );
    connect(addr, &connector(&ca, Some((&cert, &key))))
        .await
        .expect("a node certificate");
    connect(addr, &connector(&ca, None))
        .await
        .expect_err("no certificate");
    let (cert, key) = (
        other.path().join("node-edge-1.pem"),
        other.path().join("node-edge-1-key.pem"),
    );
    connect(addr, &connector(&ca, Some((&cert, &key))))
        .await
        .expect_err("another CA");
    assert_eq!(refusals.get(Limit::TlsHandshake), 2);
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_and_open_ones_stay() {
    let dir = pki_dir();
    let tls = ServerTls::load(files(dir.path(), false), &[]).expect("load");
    let addr = echo_server(tls.clone(), Arc::new(Refusals::unregistered())).await;
    let connector = connector(&dir.path().join("ca.pem"), None);
    let mut open = connect(addr, &connector).await.expect("before");
    let before = leaf_serial(&open);
    let server = Subject::Server(vec!["127.0.0.1".into()]);
    pki::issue(dir.path(), &server, dir.path(), 30, true).expect("rotate");
    tls.reload().expect("reloads");
    let after = connect(addr, &connector).await.expect("after");
    assert_ne!(
        leaf_serial(&after),
        before,
        "a new handshake sees the new certificate"
    );
    open.write_all(b"more")
        .await
        .expect("the open connection still writes");
    let mut buf = [0u8; 4];
    open.read_exact(&mut buf).await.expect("and reads");
    assert_eq!(&buf, b"more");
}

#[tokio::test]
async fn files_that_do_not_load_keep_the_previous_configuration() {
    let dir = pki_dir();
    let tls = ServerTls::load(files(dir.path(), false), &[]).expect("load");
    let before = tls.config();
    std::fs::write(dir.path().join("server-key.pem"), "half a key").expect("break");
    let err = tls.reload().expect_err("half a key");
    assert!(err.to_string().contains("server-key.pem"), "{err}");
    assert!(Arc::ptr_eq(&before, &tls.config()));
    let err = ServerTls::load(files(dir.path(), false), &[]).expect_err("bad key");
    assert!(err.to_string().contains("server-key.pem"), "{err}");
}

#[test]
fn a_node_may_speak_only_for_the_identity_in_its_certificate() {
    let dir = pki_dir();
    let certs = read_certs(&dir.path().join("node-edge-1.pem")).expect("certs");
    assert_eq!(identity::authorize("edge-1", Some(&certs)), Ok(()));
    let other = identity::authorize("edge-2", Some(&certs)).expect_err("another node");
    assert!(other.contains("spiffe://meshplug/node/edge-1"), "{other}");
    let none = identity::authorize("edge-1", None).expect_err("no certificate");
    assert!(none.contains("presented none"), "{none}");
    let server = read_certs(&dir.path().join("server.pem")).expect("server cert");
    let unnamed = identity::authorize("edge-1", Some(&server)).expect_err("no identity");
    assert!(unnamed.contains("names no node identity"), "{unnamed}");
}

#[test]
fn client_flags_go_together() {
    let p = |s: &str| Some(PathBuf::from(s));
    assert!(
        ClientTls::from_flags(None, None, None)
            .expect("plain")
            .is_none()
    );
    assert!(ClientTls::from_flags(None, p("c"), p("k")).is_err());
    assert!(ClientTls::from_flags(p("ca"), p("c"), None).is_err());
    let tls = ClientTls::from_flags(p("ca"), p("c"), p("k"))
        .expect("ok")
        .expect("tls");
    assert_eq!(tls.identity, Some((PathBuf::from("c"), PathBuf::from("k"))));
}
