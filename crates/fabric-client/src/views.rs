//! Read-only views: task lists, a task by id prefix, workers, the
//! cluster's caps and counts.

use fabric_proto::wire::{ClusterCaps, Request, Response, TaskCounts, WorkerSummary};
use fabric_proto::{TaskId, TaskInfo, TaskState};

use crate::{Client, ClientError, unexpected};

impl Client {
    /// Tasks, newest first.
    pub async fn list(
        &self,
        state: Option<TaskState>,
        limit: u32,
        before: Option<TaskId>,
    ) -> Result<Vec<TaskInfo>, ClientError> {
        self.list_request(Request::List {
            state,
            limit,
            before,
            trace: None,
        })
        .await
    }

    /// Tasks with correlation id `trace`, newest first.
    pub async fn list_traced(
        &self,
        trace: &str,
        limit: u32,
        before: Option<TaskId>,
    ) -> Result<Vec<TaskInfo>, ClientError> {
        self.list_request(Request::List {
            state: None,
            limit,
            before,
            trace: Some(trace.to_owned()),
        })
        .await
    }

    async fn list_request(&self, req: Request) -> Result<Vec<TaskInfo>, ClientError> {
        match self.call(&req).await? {
            Response::Tasks(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// The id of the one task whose id starts with `prefix` (a full id is
    /// taken as it is, without asking).
    pub async fn resolve_task(&self, prefix: &str) -> Result<TaskId, ClientError> {
        if let Ok(id) = prefix.parse::<TaskId>() {
            return Ok(id);
        }
        let req = Request::ResolveTask {
            prefix: prefix.to_owned(),
        };
        match self.call(&req).await? {
            Response::Task(info) => Ok(info.id),
            other => Err(unexpected(other)),
        }
    }

    /// Registered workers.
    pub async fn workers(&self) -> Result<Vec<WorkerSummary>, ClientError> {
        match self.call(&Request::Workers).await? {
            Response::Workers(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    /// What the cluster admits (the most a task may ask for).
    pub async fn caps(&self) -> Result<ClusterCaps, ClientError> {
        match self.call(&Request::Caps).await? {
            Response::Caps(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// How many tasks the dispatcher holds, by state and final status.
    pub async fn counts(&self) -> Result<TaskCounts, ClientError> {
        match self.call(&Request::Counts).await? {
            Response::Counts(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }
}
