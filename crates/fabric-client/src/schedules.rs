//! Schedules: a task submitted at the times of a cron expression.

use fabric_proto::wire::{Request, Response};
use fabric_proto::{ScheduleAction, ScheduleRecord, ScheduleSpec};

use crate::{Client, ClientError, unexpected};

impl Client {
    /// Adds a schedule (admin only); it is stored and flushed before the
    /// answer, which shows its next planned time. A bad expression or zone
    /// is refused as `bad_request`, naming the field.
    pub async fn add_schedule(
        &self,
        mut spec: ScheduleSpec,
    ) -> Result<ScheduleRecord, ClientError> {
        // A big input goes up as a blob, as a submit's does.
        if let Some(task) = spec.task.take() {
            spec.task = Some(self.prepare(task).await?);
        }
        let req = Request::AddSchedule {
            spec: Box::new(spec),
        };
        match self.call(&req).await? {
            Response::Schedule(rec) => Ok(*rec),
            other => Err(unexpected(other)),
        }
    }

    /// Every schedule, each with its last run.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>, ClientError> {
        match self.call(&Request::Schedules).await? {
            Response::Schedules(all) => Ok(all),
            other => Err(unexpected(other)),
        }
    }

    /// One schedule with its latest runs and their statuses.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleRecord, ClientError> {
        let req = Request::Schedule {
            name: name.to_owned(),
        };
        match self.call(&req).await? {
            Response::Schedule(rec) => Ok(*rec),
            other => Err(unexpected(other)),
        }
    }

    /// Pauses, resumes, removes (admin only) or runs a schedule now; the
    /// schedule as it is after.
    pub async fn set_schedule(
        &self,
        name: &str,
        action: ScheduleAction,
    ) -> Result<ScheduleRecord, ClientError> {
        let req = Request::SetSchedule {
            name: name.to_owned(),
            action,
        };
        match self.call(&req).await? {
            Response::Schedule(rec) => Ok(*rec),
            other => Err(unexpected(other)),
        }
    }
}
