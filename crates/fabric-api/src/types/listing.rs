//! The query of `GET /api/v1/tasks`: which tasks, by state or status.

use fabric_proto::TaskState;
use serde::Deserialize;
use utoipa::ToSchema;

/// Query of `GET /api/v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only tasks in this state.
    pub state: Option<StateFilter>,
    /// At most this many (1 to 1000, default 50).
    pub limit: Option<u32>,
    /// From `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Only tasks with this correlation id (any state).
    pub trace: Option<String>,
}

/// A state or final status to filter by.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateFilter {
    /// Waiting for a worker.
    Queued,
    /// Held until the tasks it runs after succeed.
    Waiting,
    /// Not to start before a time (`not_before`).
    Scheduled,
    /// Holding a lease.
    Running,
    /// Finished with a result.
    Done,
    /// Cancelled.
    Cancelled,
    /// Finished: exited 0.
    Succeeded,
    /// Finished: exited non-zero.
    Failed,
    /// Finished: ran out of fuel.
    FuelExhausted,
    /// Finished: over its memory limit.
    MemoryExceeded,
    /// Finished: past its wall-clock limit.
    TimedOut,
    /// Finished: the wasm trapped.
    Trapped,
    /// Finished: refused by a worker.
    Rejected,
    /// Finished: never ran, a task it runs after did not succeed.
    Skipped,
    /// Failed every attempt (retry with `POST /tasks/{id}/retry`).
    DeadLetter,
}

/// How a [`StateFilter`] is answered.
pub(crate) enum Filter {
    /// By state, from the queue or the store's index.
    State(TaskState),
    /// By final status: finished tasks are scanned.
    Status(fabric_proto::TaskStatus),
    /// Dead letters: finished tasks are scanned.
    DeadLetter,
}

impl From<StateFilter> for Filter {
    fn from(s: StateFilter) -> Self {
        use fabric_proto::TaskStatus as S;
        match s {
            StateFilter::Queued => Self::State(TaskState::Queued),
            StateFilter::Waiting => Self::State(TaskState::Waiting),
            StateFilter::Scheduled => Self::State(TaskState::Scheduled),
            StateFilter::Running => Self::State(TaskState::Running),
            StateFilter::Done => Self::State(TaskState::Done),
            StateFilter::Cancelled => Self::State(TaskState::Cancelled),
            StateFilter::Succeeded => Self::Status(S::Succeeded),
            StateFilter::Failed => Self::Status(S::Failed),
            StateFilter::FuelExhausted => Self::Status(S::FuelExhausted),
            StateFilter::MemoryExceeded => Self::Status(S::MemoryExceeded),
            StateFilter::TimedOut => Self::Status(S::TimedOut),
            StateFilter::Trapped => Self::Status(S::Trapped),
            StateFilter::Rejected => Self::Status(S::Rejected),
            StateFilter::Skipped => Self::Status(S::Skipped),
            StateFilter::DeadLetter => Self::DeadLetter,
        }
    }
}
