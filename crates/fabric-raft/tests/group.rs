//! Three Raft nodes in one process, each on its own store and QUIC
//! endpoint on loopback: they elect a leader, replicate what it commits,
//! and elect another when it stops.

use std::sync::Arc;
use std::time::Duration;

use fabric_net::framed::{FramedRecv, FramedSend};
use fabric_net::{Identity, NetConfig, peer_key};
use fabric_proto::wire::{Request, Response};
use fabric_raft::{Member, RaftConfig, RaftNode, Transport};
use fabric_store::{Command, PeerRole, Store};

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    node: RaftNode,
    slot: Slot,
    endpoint: quinn::Endpoint,
    identity: Arc<Identity>,
}

/// Serves Raft RPCs from members on `endpoint` (what the dispatcher's
/// routing does for a `Request::Raft`).
/// A node that is down (`None`) answers nothing.
type Slot = Arc<std::sync::RwLock<Option<RaftNode>>>;

fn serve(endpoint: quinn::Endpoint, slot: Slot, max: usize) {
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let slot = slot.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let Some(key) = peer_key(&conn) else { return };
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let Some(node) = slot.read().unwrap().clone() else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let (mut send, mut recv) =
                            (FramedSend::new(send, max), FramedRecv::new(recv, max));
                        let Ok(Request::Raft { kind, body }) = recv.expect::<Request>().await
                        else {
                            return;
                        };
                        assert!(node.is_member(&key.to_bytes()), "an RPC from a non-member");
                        let answer = fabric_raft::serve(node.raft(), kind, &body).await.unwrap();
                        let _ = send.send(&Response::Raft(answer)).await;
                        let _ = send.finish();
                    });
                }
            });
        }
    });
}

async fn start_group() -> Vec<Node> {
    start_group_with(RaftConfig {
        heartbeat: Duration::from_millis(100),
        election_timeout: (Duration::from_millis(400), Duration::from_millis(800)),
        snapshot_every: 20,
        keep_behind_snapshot: 5,
        ..RaftConfig::default()
    })
    .await
}

async fn start_group_with(cfg: RaftConfig) -> Vec<Node> {
    let net = NetConfig::default();
    let ids: Vec<Arc<Identity>> = (0..3)
        .map(|_| Arc::new(Identity::generate().unwrap()))
        .collect();
    let endpoints: Vec<quinn::Endpoint> = ids
        .iter()
        .map(|id| fabric_net::server_endpoint(id, "127.0.0.1:0".parse().unwrap(), &net).unwrap())
        .collect();
    let members: Vec<Member> = ids
        .iter()
        .zip(&endpoints)
        .map(|(id, ep)| Member {
            addr: ep.local_addr().unwrap().to_string(),
            key: id.public().to_bytes(),
            api_url: None,
        })
        .collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let transport = Transport {
            endpoint: endpoints[i].clone(),
            identity: ids[i].clone(),
            net: net.clone(),
        };
        let node = RaftNode::start(store.clone(), transport, members[i].clone(), &members, &cfg)
            .await
            .unwrap();
        let slot: Slot = Arc::new(std::sync::RwLock::new(Some(node.clone())));
        serve(endpoints[i].clone(), slot.clone(), net.max_frame);
        nodes.push(Node {
            slot,
            _dir: dir,
            store,
            node,
            endpoint: endpoints[i].clone(),
            identity: ids[i].clone(),
        });
    }
    // Every member initializes with the same set: safe.
    for n in &nodes {
        n.node.initialize(&members).await.unwrap();
    }
    nodes
}

fn worker(n: u8) -> Command {
    Command::Peer {
        role: PeerRole::Worker,
        key: [n; 32],
        name: Some(format!("w{n}")),
    }
}

async fn leader_of(nodes: &[&Node]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = nodes.iter().position(|n| n.node.is_leader()) {
            return i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_all_hold(nodes: &[&Node], key: u8) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !nodes
        .iter()
        .all(|n| n.store.is_peer(PeerRole::Worker, &[key; 32]).unwrap())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {key} did not reach every member"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_elect_again_when_the_leader_stops() {
    let nodes = start_group().await;
    let all: Vec<&Node> = nodes.iter().collect();
    // A follower refuses, naming the leader (asked again should the
    // leadership move meanwhile: a busy machine can delay a heartbeat).
    let mut tries = 0;
    let l = loop {
        let l = leader_of(&all).await;
        let f = (l + 1) % 3;
        nodes[f].node.wait_for_leader(Duration::from_secs(5)).await;
        match nodes[f].node.write(worker(1)).await {
            Err(fabric_raft::WriteError::NotLeader(Some(m))) if &m == nodes[l].node.me() => {
                break l;
            }
            other => {
                tries += 1;
                assert!(tries < 5, "a follower's write: {other:?}");
            }
        }
    };
    // Enough writes to pass two snapshots (every 20 entries).
    for k in 1..=50u8 {
        nodes[l].node.write(worker(k)).await.unwrap();
    }
    until_all_hold(&all, 50).await;
    assert!(
        nodes[l].store.raft_log_len() < 50,
        "the log was not compacted: {} entries",
        nodes[l].store.raft_log_len()
    );
    // The leader stops (its endpoint answers nothing): the others elect
    // one.
    *nodes[l].slot.write().unwrap() = None;
    nodes[l].node.shutdown().await;
    let rest: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != l)
        .map(|(_, n)| n)
        .collect();
    let l2 = leader_of(&rest).await;
    rest[l2].node.write(worker(51)).await.unwrap();
    until_all_hold(&rest, 51).await;
    let status = rest[l2].node.status();
    assert_eq!(status.role, "leader");
    assert_eq!(status.members.len(), 3);
    // Past two more snapshots, so the stopped node's next entry is purged
    // everywhere: it catches up by a snapshot when it comes back.
    for k in 52..=100u8 {
        rest[l2].node.write(worker(k)).await.unwrap();
    }
    let (back, node) = restart(&nodes[l]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !back.is_peer(PeerRole::Worker, &[100; 32]).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted node did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        back.is_peer(PeerRole::Worker, &[1; 32]).unwrap(),
        "the snapshot lost early writes"
    );
    let snap = node.status().snapshot;
    assert!(
        snap > Some(60),
        "it caught up without a snapshot (latest {snap:?})"
    );
}

/// Starts a stopped node again on its store and endpoint.
async fn restart(old: &Node) -> (Store, RaftNode) {
    let me = old.node.me().clone();
    let transport = Transport {
        endpoint: old.endpoint.clone(),
        identity: old.identity.clone(),
        net: NetConfig::default(),
    };
    let node = RaftNode::start(
        old.store.clone(),
        transport,
        me.clone(),
        &[me],
        &RaftConfig::default(),
    )
    .await
    .unwrap();
    *old.slot.write().unwrap() = Some(node.clone());
    (old.store.clone(), node)
}

/// Blob pieces past the bytes limit make every member snapshot and cut its
/// log, long before the entry count would: the log never holds much of
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_pieces_past_the_byte_limit_compact_every_log() {
    let nodes = start_group_with(RaftConfig {
        snapshot_every: 100_000,
        compact_after_bytes: 2 << 20,
        ..RaftConfig::default()
    })
    .await;
    let all: Vec<&Node> = nodes.iter().collect();
    let chunk = fabric_proto::BLOB_CHUNK;
    let bytes: Vec<u8> = (0..chunk * 3).map(|i| (i % 253) as u8).collect();
    let sha = fabric_proto::Sha256::of(&bytes);
    let mut leader = 0;
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        let cmd = Command::BlobPiece {
            sha,
            offset: (i * chunk) as u64,
            last: i == 2,
            bytes: piece.to_vec(),
        };
        // To whoever leads (a busy machine may move the leadership while
        // a megabyte travels); a piece written twice changes nothing.
        let mut tries = 0;
        loop {
            leader = leader_of(&all).await;
            match nodes[leader].node.write(cmd.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 10, "piece {i}: {e}");
                }
            }
        }
    }
    let leader = &nodes[leader];
    // The second piece's entry (the third is the last one written):
    // passing 2 MiB there, each member compacts at or after it.
    let second = leader.node.status().last_log.unwrap() - 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for n in &nodes {
        // The blob whole, a snapshot past the pieces, and no piece left
        // in the log up to it.
        loop {
            let snap = n.node.status().snapshot;
            let done = n.store.blob_replicated(&sha).unwrap()
                && snap.is_some_and(|s| {
                    s >= second && n.store.raft_entries(0, s + 1).unwrap().is_empty()
                });
            if done {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a member did not compact: {:?}; replicated {:?}; entries {:?}",
                n.node.status(),
                n.store.blob_replicated(&sha),
                n.store
                    .raft_entries(0, 100)
                    .map(|e| e.iter().map(|(i, _)| *i).collect::<Vec<_>>())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
