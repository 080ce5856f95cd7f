//! Jobs: a DAG of steps submitted, followed, cancelled and rescued as one.

use fabric_proto::wire::{Request, Response};
use fabric_proto::{JobId, JobSpec, JobView, TaskId};

use crate::{Client, ClientError, unexpected};

/// A job the dispatcher queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// Its id.
    pub id: JobId,
    /// For each step (in the spec's order), one task per item.
    pub tasks: Vec<Vec<TaskId>>,
}

impl Client {
    /// Queues a job, all or none, once the dispatcher has checked its DAG
    /// (an unknown step or a cycle is refused as `bad_request`, naming the
    /// steps); answered once the job and its tasks are durable. Its
    /// modules, inputs and files must be uploaded first
    /// ([`Client::upload_module`], [`Client::upload_input`]).
    pub async fn submit_job(&self, spec: JobSpec) -> Result<QueuedJob, ClientError> {
        let req = Request::SubmitJob {
            spec: Box::new(spec),
        };
        match self.call(&req).await? {
            Response::JobSubmitted { id, tasks } => Ok(QueuedJob { id, tasks }),
            other => Err(unexpected(other)),
        }
    }

    /// A job, with each step's tasks and where they stand.
    pub async fn job(&self, id: JobId) -> Result<JobView, ClientError> {
        match self.call(&Request::Job { id }).await? {
            Response::Job(view) => Ok(*view),
            other => Err(unexpected(other)),
        }
    }

    /// Up to `limit` jobs older than `before` (newest first), without their
    /// steps.
    pub async fn jobs(
        &self,
        limit: u32,
        before: Option<JobId>,
    ) -> Result<Vec<JobView>, ClientError> {
        match self.call(&Request::Jobs { limit, before }).await? {
            Response::Jobs(views) => Ok(views),
            other => Err(unexpected(other)),
        }
    }

    /// Cancels every unfinished task of a job; how many were cancelled.
    pub async fn cancel_job(&self, id: JobId) -> Result<u32, ClientError> {
        match self.call(&Request::CancelJob { id }).await? {
            Response::JobTouched { tasks, .. } => Ok(tasks),
            other => Err(unexpected(other)),
        }
    }

    /// The rescue of a finished job: queues again every task that did not
    /// succeed (and those it skipped), keeping the succeeded ones; how many
    /// were queued (0: every task had succeeded). Admin only.
    pub async fn retry_job(&self, id: JobId) -> Result<u32, ClientError> {
        match self.call(&Request::RetryJob { id }).await? {
            Response::JobTouched { tasks, .. } => Ok(tasks),
            other => Err(unexpected(other)),
        }
    }
}
