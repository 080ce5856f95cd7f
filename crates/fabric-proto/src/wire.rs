//! Messages that cross QUIC streams.
//!
//! One bidirectional stream per request or per task assignment. Every frame
//! carries an [`Envelope`] with the protocol version, so a peer that speaks a
//! different version answers [`ErrorCode::Unsupported`] instead of failing
//! to parse. Streams:
//!
//! - client or worker → dispatcher: one [`Request`], then one or more
//!   [`Response`] frames (several only for [`Request::Wait`]). A
//!   [`Request::Register`] stream stays open as the worker's control stream:
//!   the worker sends [`WorkerMsg::Heartbeat`] frames on it.
//! - dispatcher → worker: one [`Assign`]; the worker answers with
//!   [`Report`] frames, the last one [`Report::Done`] or [`Report::Refused`],
//!   and the dispatcher closes with one [`Ack`].

use serde::{Deserialize, Serialize};

use crate::{GuestEvent, Sha256, TaskId, TaskInfo, TaskOutcome, TaskSpec, TaskState};

/// A request to the dispatcher.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// A worker proves the join secret; the dispatcher remembers its key.
    Join {
        /// The secret from the join token.
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
    },
    /// A (joined) worker offers capacity; the stream stays open for
    /// heartbeats.
    Register(WorkerInfo),
    /// Stores a content-addressed blob (a module).
    PutBlob {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Asks whether a blob is stored.
    HasBlob {
        /// Its digest.
        sha: Sha256,
    },
    /// Fetches a blob (workers fetch modules this way).
    GetBlob {
        /// Its digest.
        sha: Sha256,
    },
    /// Queues a task. With `wait`, the stream then carries the task's
    /// events and its final state, as for [`Request::Wait`].
    Submit {
        /// What to run (boxed: the largest request by far).
        spec: Box<TaskSpec>,
        /// Stream the task's events and result after the id.
        #[serde(default)]
        wait: bool,
    },
    /// Queues many tasks at once, all or none (at most
    /// [`MAX_SUBMIT_BATCH`]); answered with [`Response::SubmittedMany`]
    /// once every record is durable.
    SubmitMany {
        /// What to run, in order.
        specs: Vec<TaskSpec>,
    },
    /// A task's state.
    Status {
        /// The task.
        id: TaskId,
    },
    /// A task's state with its recorded outcome.
    Result {
        /// The task.
        id: TaskId,
    },
    /// Streams a task's events until it finishes, then its result.
    Wait {
        /// The task.
        id: TaskId,
    },
    /// Lists tasks, newest first.
    List {
        /// Only tasks in this state.
        state: Option<TaskState>,
        /// At most this many.
        limit: u32,
        /// Only tasks older than this one (paging).
        before: Option<TaskId>,
        /// Only tasks with this correlation id (any state; `state` is
        /// ignored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<String>,
    },
    /// Lists registered workers.
    Workers,
    /// How many tasks there are, by state and status.
    Counts,
    /// What the cluster admits.
    Caps,
    /// Cancels a queued or running task.
    Cancel {
        /// The task.
        id: TaskId,
    },
    /// Mints a new join token for workers with the default lifetime and
    /// uses (admin only).
    CreateJoinToken,
    /// Stores one piece of a blob too big for one frame (a task input).
    /// Pieces go in order; `offset` is a multiple of [`crate::BLOB_CHUNK`]
    /// and every piece but the `last` is exactly that long. The last one
    /// makes the blob whole once its bytes hash to `sha`.
    PutBlobChunk {
        /// Digest of the whole blob.
        sha: Sha256,
        /// Where this piece starts.
        offset: u64,
        /// The piece.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// Whether this is the final piece.
        last: bool,
    },
    /// Fetches part of a stored blob (workers fetch large inputs this way).
    GetBlobRange {
        /// Its digest.
        sha: Sha256,
        /// First byte wanted.
        offset: u64,
        /// Bytes wanted (at most [`crate::BLOB_CHUNK`]).
        len: u64,
    },
    /// A worker reports how an attempt ended after that attempt's own
    /// stream broke (it reconnected meanwhile); answered with [`Ack`] as
    /// [`Response::Ack`].
    LateReport {
        /// The task.
        id: TaskId,
        /// The attempt.
        attempt: u32,
        /// How it ended.
        outcome: Box<TaskOutcome>,
    },
    /// One Raft RPC from another dispatcher of the group (members only);
    /// answered with [`Response::Raft`].
    Raft {
        /// Which RPC.
        kind: RaftKind,
        /// The RPC, as the Raft layer encodes it.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// Mints a join token (admin only).
    CreateToken {
        /// How long it is accepted, ms; `None`: the dispatcher's default.
        ttl_ms: Option<u64>,
        /// How many joins it allows; `None`: unlimited.
        uses: Option<u32>,
        /// A REST API token of this role instead of a join token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<crate::ApiRole>,
    },
    /// Lists join and REST tokens, never their secrets (admin only).
    ListTokens,
    /// Queues a dead letter's spec again as a new task (admin only);
    /// answered with [`Response::Submitted`].
    Retry {
        /// The dead letter.
        id: TaskId,
    },
    /// Revokes the join token with this id or unique id prefix (admin only).
    RevokeToken {
        /// Its id (hex) or a unique prefix of it.
        id: String,
    },
    /// Forgets a worker's key, closes its connection and requeues its
    /// leases (admin only).
    RemoveWorker {
        /// Its key (hex) or a unique prefix of it.
        key: String,
    },
    /// The one task whose id starts with `prefix` (hex digits, dashes
    /// ignored), answered as [`Response::Task`]; `not_found` when none,
    /// `conflict` naming some candidates when several do.
    ResolveTask {
        /// The start of the id.
        prefix: String,
    },
    /// Queues a job's tasks, all or none, once its DAG is checked
    /// ([`crate::JobSpec::check`]); answered with [`Response::JobSubmitted`]
    /// once the job and every task are durable.
    SubmitJob {
        /// The job (boxed: large).
        spec: Box<crate::JobSpec>,
    },
    /// A job with its steps and their tasks, as [`Response::Job`].
    Job {
        /// The job.
        id: crate::JobId,
    },
    /// Jobs, newest first, without their steps, as [`Response::Jobs`].
    Jobs {
        /// At most this many.
        limit: u32,
        /// Only jobs older than this one (paging).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<crate::JobId>,
    },
    /// Cancels every unfinished task of a job, as [`Response::JobTouched`].
    CancelJob {
        /// The job.
        id: crate::JobId,
    },
    /// Adds a schedule (admin only), stored and flushed before the answer
    /// ([`Response::Schedule`]).
    AddSchedule {
        /// The schedule (boxed: large).
        spec: Box<crate::ScheduleSpec>,
    },
    /// Every schedule, as [`Response::Schedules`].
    Schedules,
    /// One schedule with its latest runs, as [`Response::Schedule`].
    Schedule {
        /// Its name.
        name: String,
    },
    /// Pauses, resumes, removes or runs a schedule now (remove: admin
    /// only); answered with [`Response::Schedule`] (its last view).
    SetSchedule {
        /// Its name.
        name: String,
        /// What to do.
        action: crate::ScheduleAction,
    },
    /// The rescue: once a job has finished, queues again every task that
    /// did not succeed (its skipped tasks too), keeping the succeeded
    /// ones' results, as [`Response::JobTouched`].
    RetryJob {
        /// The job.
        id: crate::JobId,
    },
    /// The store's keyring, as [`Response::Keys`] (admin only); with
    /// `census`, how many values each data key seals (a scan of the store).
    Keys {
        /// Count the values per key.
        #[serde(default)]
        census: bool,
    },
    /// Starts a new data key for new writes (admin only); with `rewrap`,
    /// re-seals the old values under it in the background. Answered with
    /// [`Response::Keys`].
    RotateKey {
        /// Re-seal what older keys sealed.
        #[serde(default)]
        rewrap: bool,
    },
    /// A consistent backup of the store (admin only), sent as
    /// [`Response::BackupPiece`]s and then [`Response::BackupDone`].
    Backup,
    /// The newest admin actions, who did them and when, as
    /// [`Response::Audit`] (admin only).
    Audit {
        /// At most this many.
        limit: u32,
    },
    /// The dispatchers of this one's group and where each stands, as this
    /// one sees them, as [`Response::Members`] (any member answers it).
    Members,
    /// Adds a dispatcher to the group (admin only; the leader answers,
    /// with [`Response::Members`], once it copied the log and votes).
    AddMember {
        /// Its key.
        key: [u8; 32],
        /// Its QUIC address.
        addr: String,
        /// Its REST API's URL, if it serves one.
        api_url: Option<String>,
    },
    /// Removes a dispatcher from the group (admin only).
    RemoveMember {
        /// Its key.
        key: [u8; 32],
    },
}

/// A dispatcher's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The join secret was right; the worker's key is now trusted.
    Joined,
    /// Registration accepted; send a heartbeat at least this often.
    Registered {
        /// Heartbeat interval, ms.
        heartbeat_ms: u64,
        /// Reported runs that hold no lease here: cancel them.
        #[serde(default)]
        cancel: Vec<(TaskId, u32)>,
    },
    /// The answer to a [`Request::Raft`], as the Raft layer encodes it.
    Raft(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A blob's digest.
    Blob {
        /// Its digest.
        sha: Sha256,
    },
    /// Whether a blob is stored.
    HasBlob(bool),
    /// A blob's bytes.
    BlobBytes {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A task was queued.
    Submitted {
        /// Its id.
        id: TaskId,
        /// Why it may wait a long time (no registered worker offers what it
        /// needs), when that is so.
        #[serde(default)]
        warning: Option<String>,
    },
    /// Many tasks were queued ([`Request::SubmitMany`]), in the order of
    /// their specs.
    SubmittedMany(Vec<SubmittedTask>),
    /// One task.
    Task(Box<TaskInfo>),
    /// Progress or a log line of a task being waited on.
    Event(GuestEvent),
    /// Several tasks.
    Tasks(Vec<TaskInfo>),
    /// The workers.
    Workers(Vec<WorkerSummary>),
    /// Task counts.
    Counts(TaskCounts),
    /// What the cluster admits.
    Caps(ClusterCaps),
    /// A new join token.
    JoinToken {
        /// The token text (`fabric1.`...).
        token: String,
    },
    /// The request failed.
    Error(ErrorBody),
    /// A piece of a chunked upload was stored.
    BlobChunkStored {
        /// Bytes of the blob stored so far.
        received: u64,
        /// The blob is whole (and its digest checked).
        complete: bool,
    },
    /// Part of a blob's bytes.
    BlobRange {
        /// The whole blob's length.
        total: u64,
        /// The bytes from the requested offset.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A late report was taken (`recorded`: it became the task's result).
    Ack(Ack),
    /// A join token was minted.
    TokenCreated {
        /// The token text (`fabric1.`...): shown once, never stored.
        token: String,
        /// What `list` will show of it.
        info: TokenSummary,
    },
    /// The join tokens.
    Tokens(Vec<TokenSummary>),
    /// A join token was revoked.
    TokenRevoked(TokenSummary),
    /// A job was queued: its id, and each step's task ids in the spec's
    /// order.
    JobSubmitted {
        /// The job.
        id: crate::JobId,
        /// For each step, one task per item.
        tasks: Vec<Vec<TaskId>>,
    },
    /// One job, with its steps.
    Job(Box<crate::JobView>),
    /// Several jobs.
    Jobs(Vec<crate::JobView>),
    /// A job's tasks were cancelled or queued again.
    JobTouched {
        /// The job.
        id: crate::JobId,
        /// How many tasks.
        tasks: u32,
    },
    /// One schedule, with its latest runs' statuses.
    Schedule(Box<crate::ScheduleRecord>),
    /// Every schedule.
    Schedules(Vec<crate::ScheduleRecord>),
    /// The keyring's state.
    Keys(Box<KeysView>),
    /// The next bytes of a backup.
    BackupPiece {
        /// Bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// The backup is whole: what it holds.
    BackupDone(BackupView),
    /// Admin actions, newest first.
    Audit(Vec<AuditEntry>),
    /// The group's members ([`Request::Members`]); empty when the
    /// dispatcher is alone.
    Members(Vec<MemberView>),
    /// A worker was removed.
    WorkerRemoved {
        /// Its key.
        key: crate::WorkerKey,
        /// Whether it was connected (its connection is now closed).
        connected: bool,
        /// Tasks it held that went back to the queue.
        requeued: u32,
    },
}

mod assign;
mod envelope;
mod error;
mod keys;
mod raft;
mod submit_many;
mod views;

pub use assign::{Ack, Assign, Report, WorkerMsg};
pub use envelope::{ALPN, Envelope, WIRE_VERSION, WireError, decode_msg, encode_msg};
pub use error::{ErrorBody, ErrorCode, LeaderHint};
pub use keys::{AuditEntry, BackupView, KeyInfo, KeysView, RewrapView};
pub use raft::{MemberView, RaftKind};
pub use submit_many::{MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES, SubmittedTask};
pub use views::{ClusterCaps, TaskCounts, TokenSummary, WorkerInfo, WorkerState, WorkerSummary};

#[cfg(test)]
mod tests;
