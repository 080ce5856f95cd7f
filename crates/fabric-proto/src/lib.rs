//! Fabric's shared vocabulary: ids, task specs, limits, manifests, outcomes,
//! signed envelopes and the length-prefixed CBOR framing used on the wire.
//!
//! This crate does no I/O beyond `std::io::Read` helpers and has no async
//! runtime: every other crate depends on it, so it stays small and
//! deterministic. Anything that is signed is signed over the exact CBOR bytes
//! that travel, so verification never depends on re-encoding.

mod blob;
mod clock;
mod codec;
mod digest;
mod env;
mod event;
mod frame;
mod id;
mod job;
mod limits;
mod manifest;
mod outcome;
mod queued;
mod role;
mod schedule;
mod secret;
mod signed;
mod size;
mod spec;
mod task;
pub mod wire;
mod worker_key;

pub use blob::{BLOB_CHUNK, BlobRef, DEFAULT_MAX_INPUT_BYTES, INLINE_INPUT_MAX};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use codec::{CodecError, from_cbor, from_own_cbor, to_cbor};
pub use digest::{DigestParseError, Sha256, Sha256Hasher};
pub use env::{EnvError, check_args_env, is_unsafe_env};
pub use event::{EventQueue, GuestEvent, LogLevel, OutputStream};
pub use frame::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame, read_frame};
pub use id::{IdParseError, TaskId};
pub use job::{
    EachItem, JobId, JobIdParseError, JobRecord, JobSpec, JobSpecError, JobState, JobView,
    MAX_ACTIVE_JOBS, MAX_JOB_ARGS_BYTES, MAX_JOB_EDGES, MAX_JOB_FILE_BYTES, MAX_JOB_ITEM_NAMES,
    MAX_JOB_STAGED_FILES, MAX_JOB_STEPS, MAX_JOB_TASKS, MAX_STEP_NAME, StepSpec, StepTask,
    StepView,
};
pub use limits::{DEFAULT_LEASE_GRACE_MS, LimitCaps, LimitError, Limits, show as show_limit};
pub use manifest::{Manifest, ManifestError};
pub use outcome::{MAX_OUTPUT_FILES_BYTES, OutputFile, TaskOutcome, TaskStatus};
pub use queued::{QueuedRecord, QueuedSpec};
pub use role::{ApiRole, ApiRoleParseError};
pub use schedule::{
    CatchUpPolicy, MAX_SCHEDULE_HISTORY, MAX_SCHEDULE_NAME, MAX_SCHEDULES, Overlap, ScheduleAction,
    ScheduleRecord, ScheduleRun, ScheduleSpec, check_schedule_name,
};
pub use secret::{MAX_SECRET_BYTES, MAX_SECRETS, SecretError, SecretValue, Secrets, check_secrets};
pub use signed::{SignError, Signed, SigningKey, VerifyError, VerifyingKey};
pub use size::{format_count, format_size};
pub use spec::{
    MAX_DELAY_MS, MAX_PARENTS, MAX_TRACE_LEN, Priority, PriorityParseError, StagedFile, TaskKind,
    TaskSpec, check_relative_path, check_require, check_trace,
};
pub use task::{
    AttemptRecord, MAX_HISTORY, TaskInfo, TaskRecord, TaskState, TaskStateParseError, now_ms,
};
pub use worker_key::{WorkerKey, WorkerKeyParseError};
