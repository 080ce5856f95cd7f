//! The state machine: the replicated trees of the dispatcher's store.
//!
//! Applying is idempotent ([`Store::apply`]), so the applied position is
//! written after an entry's effects: a crash between the two applies the
//! entry again, harmlessly. A snapshot is the replicated trees, opened
//! ([`Store::export_replicated`]); it is kept in `raft_meta`, sealed, and
//! one that was being installed when the process died is installed again
//! at start.

use std::io::Cursor;

use fabric_store::{Applied, Store};
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::codec::{get_meta, io_error, put_meta};
use crate::{Fabric, Member, StorageError};

const APPLIED: &str = "applied";
const SNAPSHOT: &str = "snapshot";
/// Present while a snapshot is being installed.
const INSTALLING: &str = "installing";

/// Where the state machine stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct AppliedState {
    last: Option<LogId<u64>>,
    membership: StoredMembership<u64, Member>,
}

/// A snapshot as it is kept.
#[derive(Serialize, Deserialize)]
struct Kept {
    meta: SnapshotMeta<u64, Member>,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// The state machine: a handle on the dispatcher's store.
#[derive(Clone, Debug)]
pub struct StateMachine {
    store: Store,
    /// One snapshot built or installed at a time (openraft builds in a
    /// task of its own, alongside installs).
    snapshots: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bytes of blob pieces applied since the node last compacted for them
    /// ([`crate::RaftNode`] watches it).
    bulk: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Bytes of blob pieces in a command.
fn bulk_of(cmd: &fabric_store::Command) -> u64 {
    match cmd {
        fabric_store::Command::BlobPiece { bytes, .. } => bytes.len() as u64,
        fabric_store::Command::Many(cmds) => cmds.iter().map(bulk_of).sum(),
        _ => 0,
    }
}

fn sm_error(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    io_error(ErrorSubject::StateMachine, verb, e)
}

fn snap_error(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    io_error(ErrorSubject::Snapshot(None), verb, e)
}

impl StateMachine {
    /// The count of blob-piece bytes applied (the node resets it when it
    /// compacts).
    pub(crate) fn bulk(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.bulk.clone()
    }

    /// The state machine on `store`; finishes a snapshot install that a
    /// crash interrupted.
    pub async fn open(store: Store) -> Result<Self, StorageError> {
        let sm = Self {
            store,
            snapshots: std::sync::Arc::default(),
            bulk: std::sync::Arc::default(),
        };
        if sm
            .store
            .raft_meta(INSTALLING)
            .map_err(|e| snap_error(ErrorVerb::Read, e))?
            .is_some()
        {
            let kept: Kept = get_meta(&sm.store, SNAPSHOT, ErrorSubject::Snapshot(None))?
                .ok_or_else(|| {
                    snap_error(
                        ErrorVerb::Read,
                        std::io::Error::other(
                            "a snapshot install was interrupted and the snapshot is gone",
                        ),
                    )
                })?;
            tracing::warn!(snapshot = %kept.meta.snapshot_id, "installing again a snapshot a crash interrupted");
            sm.install(&kept).await?;
        }
        Ok(sm)
    }

    fn applied(&self) -> Result<AppliedState, StorageError> {
        Ok(get_meta(&self.store, APPLIED, ErrorSubject::StateMachine)?.unwrap_or_default())
    }

    async fn install(&self, kept: &Kept) -> Result<(), StorageError> {
        self.store
            .set_raft_meta(INSTALLING, Some(b"1"))
            .map_err(|e| snap_error(ErrorVerb::Write, e))?;
        self.flush().await?;
        self.store
            .import_replicated(&kept.data)
            .map_err(|e| snap_error(ErrorVerb::Write, e))?;
        put_meta(
            &self.store,
            APPLIED,
            ErrorSubject::StateMachine,
            &AppliedState {
                last: kept.meta.last_log_id,
                membership: kept.meta.last_membership.clone(),
            },
        )?;
        self.flush().await?;
        self.store
            .set_raft_meta(INSTALLING, None)
            .map_err(|e| snap_error(ErrorVerb::Write, e))?;
        self.flush().await
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.store
            .flush()
            .await
            .map_err(|e| sm_error(ErrorVerb::Write, e))
    }
}

impl RaftSnapshotBuilder<Fabric> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Fabric>, StorageError> {
        let _one = self.snapshots.lock().await;
        // The position first, then the trees: the trees hold at least
        // what the position says (perhaps more, which applies again
        // harmlessly).
        let at = self.applied()?;
        let store = self.store.clone();
        // Off the runtime's threads: it reads every replicated value.
        let data = tokio::task::spawn_blocking(move || store.export_replicated())
            .await
            .map_err(|e| snap_error(ErrorVerb::Read, std::io::Error::other(e.to_string())))?
            .map_err(|e| snap_error(ErrorVerb::Read, e))?;
        let snapshot_id = match at.last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, fabric_proto::now_ms()),
            None => format!("none-{}", fabric_proto::now_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: at.last,
            last_membership: at.membership,
            snapshot_id,
        };
        let kept = Kept { meta, data };
        // An install meanwhile may have kept a newer one: keep that.
        let newer = get_meta::<Kept>(&self.store, SNAPSHOT, ErrorSubject::Snapshot(None))?
            .is_some_and(|k| k.meta.last_log_id > kept.meta.last_log_id);
        if !newer {
            put_meta(&self.store, SNAPSHOT, ErrorSubject::Snapshot(None), &kept)?;
            self.flush().await?;
        }
        Ok(Snapshot {
            meta: kept.meta,
            snapshot: Box::new(Cursor::new(kept.data)),
        })
    }
}

impl RaftStateMachine<Fabric> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, Member>), StorageError> {
        let at = self.applied()?;
        Ok((at.last, at.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry<Fabric>> + Send,
        I::IntoIter: Send,
    {
        let mut at = self.applied()?;
        let mut out = Vec::new();
        for entry in entries {
            at.last = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => Applied::Done,
                EntryPayload::Normal(cmd) => {
                    self.bulk
                        .fetch_add(bulk_of(&cmd), std::sync::atomic::Ordering::AcqRel);
                    self.store.apply(&cmd).map_err(|e| {
                        io_error(ErrorSubject::Apply(entry.log_id), ErrorVerb::Write, e)
                    })?
                }
                EntryPayload::Membership(m) => {
                    at.membership = StoredMembership::new(Some(entry.log_id), m);
                    Applied::Done
                }
            });
        }
        // Not flushed: what is applied is in the log, which is durable,
        // and applies again after a crash.
        put_meta(&self.store, APPLIED, ErrorSubject::StateMachine, &at)?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let _one = self.snapshots.lock().await;
        let kept = Kept {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        // Kept first, so a crash midway installs it again at start.
        put_meta(&self.store, SNAPSHOT, ErrorSubject::Snapshot(None), &kept)?;
        self.install(&kept).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Fabric>>, StorageError> {
        Ok(
            get_meta::<Kept>(&self.store, SNAPSHOT, ErrorSubject::Snapshot(None))?.map(|kept| {
                Snapshot {
                    meta: kept.meta,
                    snapshot: Box::new(Cursor::new(kept.data)),
                }
            }),
        )
    }
}
