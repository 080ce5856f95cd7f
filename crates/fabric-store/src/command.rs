//! Replicated commands: every change the dispatcher makes to its store's
//! replicated trees, as a value that can be logged and applied in order on
//! each replica (issue 26, slice 1; see `docs/ha-plan.md`).
//!
//! A command carries plaintext values (each replica seals them with its
//! own keys as it applies them) and everything decided already: sequence
//! numbers, times and ids are fixed by whoever proposes it, so applying it
//! is deterministic. Applying is idempotent (set-style writes, and a task's
//! result is recorded once), so a replica that crashed after applying an
//! entry but before recording that it did may apply it again.
//!
//! Nothing routes through this yet: the single dispatcher still calls the
//! rooms' methods directly. [`Store::apply`] is built from those methods,
//! so both paths write alike.

use fabric_proto::{JobRecord, ScheduleRecord, TaskId, TaskOutcome, TaskRecord};
use serde::{Deserialize, Serialize};

use crate::writes::TaskWrite;
use crate::{ApiTokenRecord, JoinTokenRecord, PeerRole, Result, Store, StoredEvent};

/// One write of a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOp {
    /// Its record ([`Store::save_task`]).
    Record(TaskRecord),
    /// Its result with its final record ([`Store::record_result`]).
    Result(TaskRecord, TaskOutcome),
}

/// A change to the replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Task writes in one transaction with the job they belong to (a job
    /// and its tasks in one entry), and dead letters cleared by a retry.
    Tasks {
        /// A job record saved in the same transaction.
        job: Option<Box<JobRecord>>,
        /// The task writes, in order.
        ops: Vec<TaskOp>,
        /// Tasks that leave the dead-letter set.
        clear_dead: Vec<TaskId>,
    },
    /// A worker's report of a cancelled run added to the recorded cancel.
    AmendCancelled {
        /// The task.
        id: TaskId,
        /// The run.
        run: Box<TaskOutcome>,
    },
    /// A schedule written whole.
    PutSchedule(Box<ScheduleRecord>),
    /// A schedule removed.
    RemoveSchedule(String),
    /// A key trusted in a role (`name`), or no longer (`None`).
    Peer {
        /// The role.
        role: PeerRole,
        /// The key.
        key: [u8; 32],
        /// Its name; `None` removes it.
        name: Option<String>,
    },
    /// A join token's record written whole (minted, used, revoked: the
    /// proposer decided the uses left).
    JoinToken {
        /// The digest of its secret.
        digest: [u8; 32],
        /// The record.
        rec: JoinTokenRecord,
    },
    /// A REST token's record written whole.
    ApiToken {
        /// Its id.
        id: String,
        /// The record.
        rec: ApiTokenRecord,
    },
    /// Events at the sequence numbers the proposer gave them.
    Events(Vec<(u64, StoredEvent)>),
    /// A module's bytes (content-addressed: storing it again changes
    /// nothing).
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A piece of a chunked blob (a task's input or a file), written as an
    /// upload's piece is ([`Store::put_blob_chunk`]): pieces come in
    /// order, and a piece of a blob already whole changes nothing.
    BlobPiece {
        /// The blob's digest.
        sha: fabric_proto::Sha256,
        /// Where the piece starts (a multiple of the piece size).
        offset: u64,
        /// Whether it is the last piece.
        last: bool,
        /// Its bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Several commands in one entry, applied in order (what a leader
    /// batches while the previous entry commits).
    Many(Vec<Command>),
}

/// What applying a command says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// For each task op, whether it was written (a late write after a
    /// recorded result is not).
    Written(Vec<bool>),
    /// Whether it changed something (a cancel amended, a schedule or peer
    /// removed).
    Changed(bool),
    /// Done.
    Done,
    /// One answer per command of a [`Command::Many`].
    Many(Vec<Applied>),
}

impl Store {
    /// Applies one command; see the module's doc.
    pub fn apply(&self, cmd: &Command) -> Result<Applied> {
        Ok(match cmd {
            Command::Tasks {
                job,
                ops,
                clear_dead,
            } => {
                let writes = ops
                    .iter()
                    .map(|op| match op {
                        TaskOp::Record(rec) => TaskWrite::record(self, rec),
                        TaskOp::Result(rec, outcome) => TaskWrite::result(self, rec, outcome),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let written = self.write_job_batch(job.as_deref(), &writes)?;
                self.raise_seq(ops.iter().map(|op| match op {
                    TaskOp::Record(rec) | TaskOp::Result(rec, _) => rec.seq,
                }))?;
                for id in clear_dead {
                    self.clear_dead_letter(id)?;
                }
                Applied::Written(written)
            }
            Command::AmendCancelled { id, run } => Applied::Changed(self.amend_cancelled(id, run)?),
            Command::PutSchedule(rec) => {
                self.save_schedule(rec)?;
                Applied::Done
            }
            Command::RemoveSchedule(name) => Applied::Changed(self.remove_schedule(name)?),
            Command::Peer { role, key, name } => match name {
                Some(name) => {
                    self.add_peer(*role, key, name)?;
                    Applied::Done
                }
                None => Applied::Changed(self.remove_peer(*role, key)?),
            },
            Command::JoinToken { digest, rec } => {
                self.add_join_token(digest, rec)?;
                Applied::Done
            }
            Command::ApiToken { id, rec } => {
                self.put_api_token(id, rec)?;
                Applied::Done
            }
            Command::Events(events) => {
                for (seq, ev) in events {
                    self.put_event(*seq, ev)?;
                }
                self.raise_seq(events.iter().map(|(seq, _)| *seq))?;
                Applied::Done
            }
            Command::Blob(bytes) => {
                self.put_blob(bytes)?;
                Applied::Done
            }
            Command::BlobPiece {
                sha,
                offset,
                last,
                bytes,
            } => match self.put_blob_chunk(sha, *offset, bytes, *last) {
                Ok(progress) => {
                    // Only the last piece: every piece before it is then
                    // in the log a majority holds. (A member that had the
                    // blob whole, the leader, answers "complete" from the
                    // first piece on.)
                    if progress.complete && *last {
                        self.mark_blob_replicated(sha)?;
                    }
                    Applied::Changed(progress.complete)
                }
                Err(crate::ChunkError::Store(e)) => return Err(e),
                // The leader checked the pieces before proposing them: a
                // refusal here is the same on every member.
                Err(e) => {
                    tracing::warn!(%sha, error = %e, "a replicated blob piece was refused");
                    Applied::Changed(false)
                }
            },
            Command::Many(cmds) => Applied::Many(
                cmds.iter()
                    .map(|c| self.apply(c))
                    .collect::<Result<Vec<_>>>()?,
            ),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
