//! The JSON shapes of `/api/v1/jobs`: a job as submitted (steps that name
//! each other), and a job's view.

use std::collections::BTreeMap;

use fabric_proto::JobView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{BlobRefJson, LimitsJson, PriorityJson, StagedFileJson};

/// A job to queue: a DAG of named steps (the REST form of a job file).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewJob {
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// The steps, in any order (at most 256, making at most 10,000
    /// tasks).
    pub steps: Vec<NewStep>,
}

/// One step: exactly one of `module` or `command`; one task, or one per
/// `each` item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewStep {
    /// Unique in the job: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// SHA-256 (hex) of an uploaded module.
    pub module: Option<String>,
    /// An allow-listed program name, run in the native sandbox.
    pub command: Option<String>,
    /// Arguments; in a native fan-out, `{}` stands for the item's file.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secrets, given to each of the step's tasks as environment
    /// variables; never shown, encrypted at rest.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, fabric_proto::SecretValue>,
    /// Standard input as an uploaded blob.
    pub input_blob: Option<BlobRefJson>,
    /// Files placed in a native step's work dir.
    #[serde(default)]
    pub files: Vec<StagedFileJson>,
    /// Globs of files a native step's runs bring back.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Resource limits; each one left out takes the default.
    pub limits: Option<LimitsJson>,
    /// `high`, `normal` (default) or `low`.
    pub priority: Option<PriorityJson>,
    /// Retries of a failed attempt (default 0).
    pub retries: Option<u32>,
    /// Labels the worker must carry.
    #[serde(default)]
    pub require: Vec<String>,
    /// Steps whose every task must succeed first.
    #[serde(default)]
    pub after: Vec<String>,
    /// Steps whose tasks' stdouts, concatenated (step by step, each in
    /// fan-out order), are this step's stdin (fan-in; implies `after`).
    #[serde(default)]
    pub input_from: Vec<String>,
    /// Native steps whose output files are staged into this one's dir
    /// (implies `after`).
    #[serde(default)]
    pub files_from: Vec<String>,
    /// Fan-out: one task per item (a wasm task reads it as stdin; a native
    /// one finds it in its dir under `name`).
    #[serde(default)]
    pub each: Vec<EachItemJson>,
}

/// One file of a fan-out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EachItemJson {
    /// Its name (a relative path).
    pub name: String,
    /// SHA-256 (hex) of the uploaded blob.
    pub sha256: String,
    /// Its length in bytes.
    pub len: u64,
}

/// A queued job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobCreated {
    /// The job's id (`job-...`).
    pub id: String,
    /// Each step's task ids, in the body's order.
    pub steps: Vec<StepCreated>,
}

/// A queued step.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepCreated {
    /// Its name.
    pub name: String,
    /// Its tasks' ids.
    pub tasks: Vec<String>,
}

/// A job and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobJson {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Submitted at, ms since the epoch.
    pub submitted_ms: u64,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// Its tasks by state or final status.
    pub counts: BTreeMap<String, u64>,
    /// Rescues so far.
    pub rescues: u32,
    /// Its steps (left out in a list).
    pub steps: Vec<StepJson>,
}

/// A step of a job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepJson {
    /// Its name.
    pub name: String,
    /// The steps it runs after.
    pub after: Vec<String>,
    /// Its tasks.
    pub tasks: Vec<StepTaskJson>,
}

/// One task of a step.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepTaskJson {
    /// The task's id.
    pub id: String,
    /// Its fan-out item's file.
    pub item: Option<String>,
    /// Its state, or its final status.
    pub status: String,
}

impl From<&JobView> for JobJson {
    fn from(v: &JobView) -> Self {
        Self {
            id: v.id.to_string(),
            name: v.name.clone(),
            submitted_ms: v.submitted_ms,
            state: v.state.to_string(),
            counts: v.counts.clone(),
            rescues: v.rescues,
            steps: v
                .steps
                .iter()
                .map(|s| StepJson {
                    name: s.name.clone(),
                    after: s.after.clone(),
                    tasks: s
                        .tasks
                        .iter()
                        .map(|t| StepTaskJson {
                            id: t.id.to_string(),
                            item: t.item.clone(),
                            status: t.status.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobJson>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<String>,
}

/// What a cancel or rescue touched.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobTouched {
    /// The job.
    pub id: String,
    /// How many tasks were cancelled, or queued again.
    pub tasks: u32,
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobListQuery {
    /// At most this many (1 to 100, default 20).
    pub limit: Option<u32>,
    /// Only jobs older than this one (`next_before` of the page before).
    pub before: Option<String>,
}
