//! Real QUIC handshakes and framed streams on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use fabric_proto::wire::Request;

use crate::framed::{FramedRecv, FramedSend};
use crate::{
    EndpointError, Identity, NetConfig, PublicKey, StreamError, connect, framed, peer_key,
    server_endpoint,
};

async fn serve_once(ep: quinn::Endpoint) -> Option<PublicKey> {
    let conn = ep.accept().await?.await.ok()?;
    let key = peer_key(&conn);
    // Echo one frame so the client can see the stream works.
    if let Ok((mut s, mut r)) = framed::accept(&conn, 1024).await
        && let Ok(Some(bytes)) = r.recv_raw().await
    {
        let _ = s.send_raw(&bytes).await;
        let _ = s.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    }
    key
}

/// A server identity and its listening endpoint on loopback.
fn listening() -> (Identity, quinn::Endpoint, SocketAddr) {
    let server = Identity::generate().unwrap();
    let ep = server_endpoint(
        &server,
        "127.0.0.1:0".parse().unwrap(),
        &NetConfig::default(),
    )
    .unwrap();
    let addr = ep.local_addr().unwrap();
    (server, ep, addr)
}

/// A fresh client's connection to `addr`, pinning `server`.
async fn connect_to(
    server: PublicKey,
    addr: SocketAddr,
) -> Result<quinn::Connection, EndpointError> {
    let me = Identity::generate().unwrap();
    connect(&me, vec![server], addr, &NetConfig::default()).await
}

#[tokio::test]
async fn pinned_key_connects_and_both_sides_learn_the_peer_key() {
    let (server, ep, addr) = listening();
    let client = Identity::generate().unwrap();
    let task = tokio::spawn(serve_once(ep));
    let conn = connect(&client, vec![server.public()], addr, &NetConfig::default())
        .await
        .unwrap();
    assert_eq!(peer_key(&conn), Some(server.public()));
    let (mut s, mut r) = framed::open(&conn, 1024).await.unwrap();
    s.send(&Request::Workers).await.unwrap();
    s.finish().unwrap();
    let echoed: Request = r.expect().await.unwrap();
    assert!(matches!(echoed, Request::Workers));
    conn.close(0u32.into(), b"done");
    assert_eq!(task.await.unwrap(), Some(client.public()));
}

#[tokio::test]
async fn a_server_with_another_key_fails_the_handshake() {
    let (_server, ep, addr) = listening();
    let expected = Identity::generate().unwrap();
    tokio::spawn(serve_once(ep));
    let err = connect_to(expected.public(), addr).await.unwrap_err();
    assert!(matches!(err, EndpointError::Handshake { .. }), "{err}");
    assert!(err.to_string().contains("is not the pinned key"), "{err}");
}

#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_header() {
    let (server, ep, addr) = listening();
    let task = tokio::spawn(async move {
        let conn = ep.accept().await.unwrap().await.unwrap();
        let (_s, r) = conn.accept_bi().await.unwrap();
        FramedRecv::new(r, 1024).recv_raw().await
    });
    let conn = connect_to(server.public(), addr).await.unwrap();
    let (mut s, _r) = conn.open_bi().await.unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let got = task.await.unwrap();
    assert!(
        matches!(got, Err(StreamError::FrameTooLarge { len, max: 1024 }) if len == u64::from(u32::MAX)),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_message_over_the_cap_is_never_sent() {
    let (server, ep, addr) = listening();
    tokio::spawn(serve_once(ep));
    let conn = connect_to(server.public(), addr).await.unwrap();
    let (s, r) = conn.open_bi().await.unwrap();
    let mut s = FramedSend::new(s, 64);
    let big = Request::PutBlob {
        bytes: vec![7; 1000],
    };
    let err = s.send(&big).await.unwrap_err();
    assert!(
        matches!(err, StreamError::FrameTooLarge { max: 64, .. }),
        "{err}"
    );
    // Nothing went out, so a small frame on the same stream still arrives
    // whole and is echoed back.
    s.send(&Request::Workers).await.unwrap();
    s.finish().unwrap();
    let echoed: Request = FramedRecv::new(r, 1024).expect().await.unwrap();
    assert!(matches!(echoed, Request::Workers));
}
