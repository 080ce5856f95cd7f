use std::time::Duration;

use crate::{Identity, NetConfig, NetError, connect, framed, peer_key, server_endpoint};

async fn serve_once(ep: quinn::Endpoint) -> Option<crate::PublicKey> {
    let conn = ep.accept().await?.await.ok()?;
    let key = peer_key(&conn);
    // Echo one frame so the client can see the stream works.
    if let Ok((mut s, mut r)) = conn.accept_bi().await
        && let Ok(Some(bytes)) = framed::recv_raw(&mut r, 1024).await
    {
        let _ = s.write_all(&(bytes.len() as u32).to_be_bytes()).await;
        let _ = s.write_all(&bytes).await;
        let _ = s.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    }
    key
}

#[tokio::test]
async fn pinned_key_connects_and_both_sides_learn_the_peer_key() {
    let server = Identity::generate().unwrap();
    let client = Identity::generate().unwrap();
    let cfg = NetConfig::default();
    let ep = server_endpoint(&server, "127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = ep.local_addr().unwrap();
    let task = tokio::spawn(serve_once(ep));
    let conn = connect(&client, vec![server.public()], addr, &cfg)
        .await
        .unwrap();
    assert_eq!(peer_key(&conn), Some(server.public()));
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    framed::send(&mut s, &fabric_proto::wire::Request::Workers)
        .await
        .unwrap();
    s.finish().unwrap();
    let echoed: fabric_proto::wire::Request = framed::expect(&mut r, 1024).await.unwrap();
    assert!(matches!(echoed, fabric_proto::wire::Request::Workers));
    conn.close(0u32.into(), b"done");
    assert_eq!(task.await.unwrap(), Some(client.public()));
}

#[tokio::test]
async fn a_server_with_another_key_fails_the_handshake() {
    let server = Identity::generate().unwrap();
    let expected = Identity::generate().unwrap();
    let cfg = NetConfig::default();
    let ep = server_endpoint(&server, "127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = ep.local_addr().unwrap();
    tokio::spawn(serve_once(ep));
    let err = connect(
        &Identity::generate().unwrap(),
        vec![expected.public()],
        addr,
        &cfg,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::Connection(_)), "{err}");
    assert!(err.to_string().contains("is not the pinned key"), "{err}");
}

#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_header() {
    let server = Identity::generate().unwrap();
    let cfg = NetConfig::default();
    let ep = server_endpoint(&server, "127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = ep.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let conn = ep.accept().await.unwrap().await.unwrap();
        let (_s, mut r) = conn.accept_bi().await.unwrap();
        framed::recv_raw(&mut r, 1024).await
    });
    let conn = connect(
        &Identity::generate().unwrap(),
        vec![server.public()],
        addr,
        &cfg,
    )
    .await
    .unwrap();
    let (mut s, _r) = conn.open_bi().await.unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let got = task.await.unwrap();
    assert!(
        matches!(got, Err(NetError::FrameTooLarge { len, max: 1024 }) if len == u64::from(u32::MAX)),
        "{got:?}"
    );
}
