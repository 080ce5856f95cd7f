use fabric_proto::{
    ApiRole, CatchUpPolicy, JobId, JobRecord, JobSpec, Overlap, ScheduleRecord, ScheduleSpec,
    Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus,
};

use super::{Applied, Command, TaskOp};
use crate::testing::temp_store;
use crate::{ApiTokenRecord, EventKind, JoinTokenRecord, PeerRole, Store, StoredEvent};

fn task(n: u64) -> TaskRecord {
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.args = vec![format!("--n={n}")];
    TaskRecord::queued(TaskId::new(), spec, n, 1)
}

fn done(rec: &TaskRecord) -> (TaskRecord, TaskOutcome) {
    let mut fin = rec.clone();
    fin.state = TaskState::Done;
    fin.status = Some(TaskStatus::Succeeded);
    let mut o = TaskOutcome::rejected("x");
    o.status = TaskStatus::Succeeded;
    o.stdout = b"out".to_vec();
    (fin, o)
}

/// A sequence touching every kind of command.
pub(crate) fn sequence() -> (Vec<Command>, Vec<TaskRecord>) {
    let (a, b) = (task(1), task(2));
    let (a_fin, a_out) = done(&a);
    let job = JobRecord {
        id: JobId::new(),
        spec: JobSpec {
            name: "j".into(),
            steps: Vec::new(),
        },
        tasks: vec![vec![a.id, b.id]],
        submitted_ms: 1,
        rescues: 0,
    };
    let schedule = ScheduleRecord {
        spec: ScheduleSpec {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            tz: "UTC".into(),
            overlap: Overlap::Skip,
            catch_up: CatchUpPolicy::One,
            task: Some(TaskSpec::wasm(Sha256::of(b"m"))),
            job: None,
        },
        paused: false,
        next_ms: Some(2_000),
        runs: Vec::new(),
        created_ms: 1,
    };
    let event = |seq: u64, detail: &str| {
        (
            seq,
            StoredEvent {
                at_ms: seq,
                task: Some(a.id),
                kind: EventKind::Submitted,
                detail: detail.into(),
                actor: Some("key 00".into()),
            },
        )
    };
    let cmds = vec![
        Command::Tasks {
            job: Some(Box::new(job)),
            ops: vec![TaskOp::Record(a.clone()), TaskOp::Record(b.clone())],
            clear_dead: Vec::new(),
        },
        Command::Events(vec![event(10, "a"), event(11, "b")]),
        Command::Tasks {
            job: None,
            // The result, then a late record it makes final.
            ops: vec![TaskOp::Result(a_fin, a_out), TaskOp::Record(a.clone())],
            clear_dead: Vec::new(),
        },
        Command::PutSchedule(Box::new(schedule)),
        Command::Peer {
            role: PeerRole::Worker,
            key: [3; 32],
            name: Some("w1".into()),
        },
        Command::Peer {
            role: PeerRole::Client,
            key: [4; 32],
            name: Some("c".into()),
        },
        Command::Peer {
            role: PeerRole::Client,
            key: [4; 32],
            name: None,
        },
        Command::JoinToken {
            digest: [5; 32],
            rec: JoinTokenRecord {
                created_ms: 1,
                expires_ms: Some(9),
                uses_left: Some(2),
                revoked: false,
            },
        },
        Command::ApiToken {
            id: "00aa".into(),
            rec: ApiTokenRecord {
                digest: [6; 32],
                role: ApiRole::Read,
                created_ms: 1,
                expires_ms: None,
                revoked: false,
            },
        },
        Command::RemoveSchedule("none-such".into()),
    ];
    (cmds, vec![a, b])
}

/// What a replica holds, decrypted: comparable across replicas whose keys
/// differ.
pub(crate) fn view(store: &Store, tasks: &[TaskRecord]) -> String {
    let mut out = String::new();
    for t in tasks {
        out += &format!(
            "{:?}\n{:?}\n",
            store.task(&t.id).unwrap(),
            store.result(&t.id).unwrap()
        );
    }
    out += &format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
        store.jobs(10, None).unwrap(),
        store.schedules().unwrap(),
        store.peers(PeerRole::Worker).unwrap(),
        store.peers(PeerRole::Client).unwrap(),
        store.join_tokens().unwrap(),
        store.api_tokens().unwrap(),
        store.recent_events(100).unwrap(),
        store.totals().unwrap(),
    );
    out
}

#[test]
fn two_replicas_applying_one_sequence_hold_the_same_and_again_changes_nothing() {
    let (cmds, tasks) = sequence();
    let (_d1, one) = temp_store();
    let (_d2, two) = temp_store();
    let mut answers = Vec::new();
    for c in &cmds {
        answers.push(one.apply(c).unwrap());
        two.apply(c).unwrap();
    }
    assert_eq!(
        answers[2],
        Applied::Written(vec![true, false]),
        "a late record after the result is not written"
    );
    assert_eq!(answers[6], Applied::Changed(true), "the peer was removed");
    assert_eq!(answers[9], Applied::Changed(false));
    let first = view(&one, &tasks);
    assert_eq!(first, view(&two, &tasks), "the replicas differ");
    assert!(first.contains("w1") && first.contains("nightly"), "{first}");
    // Applied again (a replica that crashed before noting it had): no
    // change, counts included.
    for c in &cmds {
        one.apply(c).unwrap();
    }
    assert_eq!(
        view(&one, &tasks),
        first,
        "applying again changed the state"
    );
}

#[test]
fn commands_travel_as_cbor() {
    let (cmds, _) = sequence();
    for c in &cmds {
        let bytes = fabric_proto::to_cbor(c).unwrap();
        assert_eq!(&fabric_proto::from_cbor::<Command>(&bytes).unwrap(), c);
    }
}

#[test]
fn a_new_leader_numbers_above_every_sequence_it_applied_even_after_a_restart() {
    let (dir, store) = temp_store();
    let ev = StoredEvent {
        at_ms: 1,
        task: None,
        kind: EventKind::TokenCreated,
        detail: "t".into(),
        actor: None,
    };
    let far = store.next_seq().unwrap() + 5_000_000;
    store
        .apply(&Command::Many(vec![Command::Events(vec![(far, ev)])]))
        .unwrap();
    assert!(store.next_seq().unwrap() > far);
    crate::testing::flush(&store);
    drop(store);
    let store = crate::testing::reopen(dir.path());
    let a = store.next_seq().unwrap();
    assert!(a > far, "after a restart: {a} <= {far}");
    assert!(store.next_seq().unwrap() > a);
}

#[test]
fn blob_pieces_make_the_same_blob_on_every_replica_and_again_changes_nothing() {
    let bytes: Vec<u8> = (0..(fabric_proto::BLOB_CHUNK * 2 + 100))
        .map(|i| (i % 251) as u8)
        .collect();
    let sha = Sha256::of(&bytes);
    let pieces: Vec<Command> = bytes
        .chunks(fabric_proto::BLOB_CHUNK)
        .enumerate()
        .map(|(i, p)| Command::BlobPiece {
            sha,
            offset: (i * fabric_proto::BLOB_CHUNK) as u64,
            last: (i + 1) * fabric_proto::BLOB_CHUNK >= bytes.len(),
            bytes: p.to_vec(),
        })
        .collect();
    let (_d1, one) = temp_store();
    let (_d2, two) = temp_store();
    let mut answers = Vec::new();
    for c in &pieces {
        answers.push(one.apply(c).unwrap());
        two.apply(c).unwrap();
    }
    assert_eq!(answers.last(), Some(&Applied::Changed(true)), "whole");
    assert!(one.blob_replicated(&sha).unwrap() && two.blob_replicated(&sha).unwrap());
    for s in [&one, &two] {
        let (read, _) = s.blob_range(&sha, 0, bytes.len() as u64).unwrap().unwrap();
        assert!(read == bytes, "the blob differs");
    }
    // Again (a replica replaying its log): the blob is whole, nothing
    // changes.
    for c in &pieces {
        assert_eq!(one.apply(c).unwrap(), Applied::Changed(true));
    }
    assert_eq!(one.blob_len(&sha).unwrap(), Some(bytes.len() as u64));
}

/// The leader holds the uploaded blob whole before it proposes the first
/// piece. It must not count the blob as carried by the log until the last
/// piece is applied: a replication cut short (the leader lost its term for
/// a moment) and tried again would otherwise stop at once, with the
/// others holding only the first pieces, and a new leader could not give
/// a task its input.
#[test]
fn a_blob_whole_here_counts_as_replicated_only_once_its_last_piece_is_applied() {
    let bytes: Vec<u8> = (0..(fabric_proto::BLOB_CHUNK * 3))
        .map(|i| (i % 241) as u8)
        .collect();
    let sha = Sha256::of(&bytes);
    let (_d, leader) = temp_store();
    let n = bytes.len() / fabric_proto::BLOB_CHUNK;
    for (i, p) in bytes.chunks(fabric_proto::BLOB_CHUNK).enumerate() {
        leader
            .put_blob_chunk(&sha, (i * fabric_proto::BLOB_CHUNK) as u64, p, i + 1 == n)
            .unwrap();
    }
    assert!(leader.has_blob(&sha).unwrap(), "uploaded whole");
    let piece = |i: usize| Command::BlobPiece {
        sha,
        offset: (i * fabric_proto::BLOB_CHUNK) as u64,
        last: i + 1 == n,
        bytes: bytes[i * fabric_proto::BLOB_CHUNK..(i + 1) * fabric_proto::BLOB_CHUNK].to_vec(),
    };
    for i in 0..n - 1 {
        leader.apply(&piece(i)).unwrap();
        assert!(
            !leader.blob_replicated(&sha).unwrap(),
            "counted as replicated after piece {i} of {n}"
        );
    }
    leader.apply(&piece(n - 1)).unwrap();
    assert!(
        leader.blob_replicated(&sha).unwrap(),
        "after the last piece"
    );
}
