//! Peers that open streams and go silent, and peers over their limits.

use std::time::Duration;

use fabric_net::framed::FramedRecv;
use fabric_net::{Identity, NetConfig};
use fabric_proto::wire::{ErrorCode, Response};
use futures_util::FutureExt as _;

use crate::harness::{Cluster, PATIENCE, fast_heartbeats};

const MAX: usize = fabric_proto::DEFAULT_MAX_FRAME;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_opens_streams_and_goes_silent_has_them_closed_and_others_are_served() {
    let c = Cluster::start_with(fast_heartbeats(), |cfg| {
        cfg.net.request_timeout = Duration::from_millis(300);
    })
    .await;
    let conn = c.connect_as(&Identity::generate().unwrap()).await;
    // Streams with half a frame header each, then silence; and more empty
    // ones up to the small limit a key without a role gets.
    let unknown_limit = NetConfig::default().unknown_peer_streams as usize;
    let mut silent = Vec::new();
    for i in 0..unknown_limit {
        let (mut send, recv) = conn.open_bi().await.unwrap();
        if i < 3 {
            send.write_all(&[0, 0]).await.unwrap();
        }
        silent.push((send, FramedRecv::new(recv, MAX)));
    }
    // One more cannot even be opened while those are open: the stream
    // credit the dispatcher gave is spent, so opening is pending (a state,
    // polled once; no clock).
    let mut one_more = Box::pin(conn.open_bi());
    assert!(
        (&mut one_more).now_or_never().is_none(),
        "a key without a role got more than {unknown_limit} streams"
    );
    // Others are served meanwhile.
    assert!(c.client.workers().await.unwrap().is_empty());
    // The half-sent streams are answered and closed once the timeout passed.
    for (_send, recv) in silent.iter_mut().take(3) {
        let answer = tokio::time::timeout(PATIENCE, recv.expect::<Response>())
            .await
            .expect("the dispatcher closes an idle stream")
            .expect("with an answer");
        match answer {
            Response::Error(e) => {
                assert_eq!(e.code, ErrorCode::BadRequest);
                assert!(e.message.contains("no whole request"), "{}", e.message);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(c.client.workers().await.unwrap().is_empty());
    // Once the silent streams are gone, the one that waited opens: it was
    // held by the limit, not refused.
    drop(silent);
    tokio::time::timeout(PATIENCE, one_more)
        .await
        .expect("a stream opens once the others are closed")
        .expect("opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_of_keys_without_a_role_are_capped() {
    let c = Cluster::start_with(fast_heartbeats(), |cfg| {
        cfg.peers.unknown_connections = 2;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let conn = c.connect_as(&Identity::generate().unwrap()).await;
        // A (wrong) join answered: the dispatcher serves, so counts, it.
        let (mut send, mut recv) = fabric_net::framed::open(&conn, MAX).await.unwrap();
        send.send(&fabric_proto::wire::Request::Join {
            secret: vec![0; 32],
        })
        .await
        .unwrap();
        assert!(matches!(
            recv.expect::<Response>().await,
            Ok(Response::Error(e)) if e.code == ErrorCode::Unauthorized
        ));
        open.push(conn);
    }
    let third = c.connect_as(&Identity::generate().unwrap()).await;
    let closed = tokio::time::timeout(PATIENCE, third.closed())
        .await
        .expect("the connection over the limit is closed");
    assert!(
        closed.to_string().contains("limit"),
        "closed saying why: {closed}"
    );
    for conn in &open {
        assert!(conn.close_reason().is_none(), "the first two stay open");
    }
    // The client role is not counted with them.
    assert!(c.client.workers().await.unwrap().is_empty());
}
