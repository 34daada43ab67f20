use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

async fn pair(timeout: Duration) -> (IdleTimeout<TcpStream>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (IdleTimeout::new(server, timeout), client)
}

#[tokio::test]
async fn a_silent_peer_is_cut_after_the_timeout() {
    let (mut server, _client) = pair(Duration::from_millis(200)).await;
    let mut buf = [0u8; 8];
    let started = Instant::now();
    let err = server.read(&mut buf).await.expect_err("times out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn each_byte_read_restarts_the_clock() {
    let (mut server, mut client) = pair(Duration::from_millis(300)).await;
    let mut buf = [0u8; 1];
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(b"x").await.expect("write");
        server
            .read_exact(&mut buf)
            .await
            .expect("read within the timeout");
    }
}
