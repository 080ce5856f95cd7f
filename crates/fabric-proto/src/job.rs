//! Jobs: a DAG of named steps, each one task or one task per file (`each`),
//! submitted and followed as one (`fabric job submit FILE.toml`,
//! `POST /api/v1/jobs`).
//!
//! A step names the steps it runs after (`after`), whose stdouts it reads
//! (`input_from`, concatenated in step order and then fan-out order) and
//! whose output files it gets (`files_from`); the last two imply the first.
//! [`JobSpec::check`] refuses, before anything is stored, a job whose steps
//! refer to an unknown step or form a cycle, naming the steps.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{BlobRef, Limits, Priority, TaskId, TaskKind};

/// Most steps one job may have.
pub const MAX_JOB_STEPS: usize = 256;
/// Most tasks one job may make (fan-outs included).
pub const MAX_JOB_TASKS: usize = 10_000;
/// Most jobs with unfinished tasks at once, per dispatcher.
pub const MAX_ACTIVE_JOBS: usize = 1_000;
/// The largest job file (TOML) or job request (JSON), in bytes.
pub const MAX_JOB_FILE_BYTES: usize = 1 << 20;
/// The longest step or job name.
pub const MAX_STEP_NAME: usize = 64;
/// Most dependency edges a job makes: for each step, its tasks times its
/// parent steps' tasks (a fan-in of 10,000 is 10,000 edges; two fan-outs
/// of 10,000, one after the other, would be 10^8).
pub const MAX_JOB_EDGES: usize = 100_000;
/// Most bytes of args and env, and most staged files, the job's tasks
/// carry in all (each task carries its step's): what one job may make the
/// dispatcher hold while it admits it.
pub const MAX_JOB_ARGS_BYTES: usize = 32 << 20;
/// See [`MAX_JOB_ARGS_BYTES`].
pub const MAX_JOB_STAGED_FILES: usize = 100_000;
/// Most bytes of `each` item names in one job (they are kept in its record
/// and shown in its view, which must fit a frame).
pub const MAX_JOB_ITEM_NAMES: usize = 2 << 20;

/// A job's id: `job-` and a time-ordered UUID. An `--each` job's id has
/// the same form; it has no record, only tasks that carry it as their
/// correlation id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct JobId(TaskId);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(TaskId::new())
    }

    /// Its 16 bytes, in creation order (a store key).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Rebuilds an id from [`JobId::as_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(TaskId::from_bytes(bytes))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for JobId {
    type Error = JobIdParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A string is not a job id.
#[derive(Debug, thiserror::Error)]
#[error("invalid job id {0:?}: expected job- and a UUID, as fabric job submit prints")]
pub struct JobIdParseError(String);

impl FromStr for JobId {
    type Err = JobIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("job-")
            .and_then(|u| u.parse().ok())
            .map(Self)
            .ok_or_else(|| JobIdParseError(s.chars().take(80).collect()))
    }
}

/// A job as submitted: its steps, files already uploaded (modules and
/// staged files by digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// A name for people (the file's `name`, else its file name).
    #[serde(default)]
    pub name: String,
    /// The steps, in any order.
    pub steps: Vec<StepSpec>,
}

/// One step: one task, or one per [`EachItem`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique in the job: 1 to [`MAX_STEP_NAME`] of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// What it runs: a module, or a native command with its staged files
    /// and output globs.
    pub kind: TaskKind,
    /// Arguments; in a native fan-out, `{}` stands for the item's file.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Secrets, given to each of its tasks as env (see
    /// [`crate::SecretValue`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: crate::Secrets,
    /// Its stdin (a stored blob), unless it reads its parents' stdouts or
    /// fans out over files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<BlobRef>,
    /// Limits; the cluster's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Priority.
    #[serde(default)]
    pub priority: Priority,
    /// Retries of a failed attempt.
    #[serde(default)]
    pub retries: u32,
    /// Steps whose every task must succeed first.
    #[serde(default)]
    pub after: Vec<String>,
    /// Steps whose tasks' stdouts, concatenated, are this step's stdin.
    #[serde(default)]
    pub input_from: Vec<String>,
    /// Native steps whose tasks' output files are staged into this one's
    /// dir.
    #[serde(default)]
    pub files_from: Vec<String>,
    /// Labels a worker must carry.
    #[serde(default)]
    pub require: Vec<String>,
    /// Fan-out: one task per item; none means one task.
    #[serde(default)]
    pub each: Vec<EachItem>,
}

/// One file of a fan-out: a wasm task reads it as stdin; a native task
/// finds it in its dir under `name`, which `{}` in its args stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EachItem {
    /// The file's name (relative, `/`-separated).
    pub name: String,
    /// Its content.
    pub blob: BlobRef,
}

/// A job is malformed; nothing of it was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobSpecError {
    /// A step refers to a step the job does not have.
    #[error("step {step:?} names {field} {missing:?}, which is not a step of this job")]
    UnknownStep {
        /// The step.
        step: String,
        /// `after`, `input_from` or `files_from`.
        field: &'static str,
        /// The name it gives.
        missing: String,
    },
    /// The steps run after each other in a circle.
    #[error("the steps form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// Anything else, in the job file's terms.
    #[error("{0}")]
    Invalid(String),
}

impl StepSpec {
    /// A step named `name` that runs `kind` once, with every other field
    /// at its default (no args, inputs or parents; normal priority; no
    /// retries).
    pub fn new(name: impl Into<String>, kind: TaskKind) -> Self {
        Self {
            name: name.into(),
            kind,
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
            input: None,
            limits: None,
            priority: Priority::Normal,
            retries: 0,
            after: Vec::new(),
            input_from: Vec::new(),
            files_from: Vec::new(),
            require: Vec::new(),
            each: Vec::new(),
        }
    }

    /// How many tasks it makes.
    pub fn tasks(&self) -> usize {
        self.each.len().max(1)
    }

    /// Every step it runs after: `after`, `input_from` and `files_from`.
    pub fn parents(&self) -> BTreeSet<&str> {
        self.after
            .iter()
            .chain(&self.input_from)
            .chain(&self.files_from)
            .map(String::as_str)
            .collect()
    }
}

/// A stored job: its spec, and the task that runs each step's items now
/// (a rescue replaces the ones that did not succeed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub id: JobId,
    /// As submitted.
    pub spec: JobSpec,
    /// For each step (in the spec's order), one task per item.
    pub tasks: Vec<Vec<TaskId>>,
    /// Submitted at (ms since the epoch).
    pub submitted_ms: u64,
    /// Rescues so far (`fabric job retry`).
    #[serde(default)]
    pub rescues: u32,
}

impl JobRecord {
    /// Every task of the job, step by step.
    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskId> {
        self.tasks.iter().flatten()
    }
}

/// Where a job stands, for `fabric job status` and `GET /api/v1/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// The job.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// Submitted at (ms since the epoch).
    pub submitted_ms: u64,
    /// `running`, `succeeded` or `failed` (some task ended otherwise).
    pub state: JobState,
    /// How many tasks are in each state or final status.
    pub counts: BTreeMap<String, u64>,
    /// Rescues so far.
    pub rescues: u32,
    /// Its steps, in the job's order (empty in a list).
    #[serde(default)]
    pub steps: Vec<StepView>,
}

/// A step in a [`JobView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// Its name.
    pub name: String,
    /// The steps it runs after.
    pub after: Vec<String>,
    /// Its tasks: id, and state or final status.
    pub tasks: Vec<StepTask>,
}

/// One task of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTask {
    /// The task.
    pub id: TaskId,
    /// Its item's file, in a fan-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Its state, or its final status once it has one.
    pub status: String,
}

/// A job as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Some task is not finished.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// Every task finished, and some did not succeed.
    Failed,
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        })
    }
}

mod check;

#[cfg(test)]
mod tests;
