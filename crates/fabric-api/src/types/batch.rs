//! Many tasks queued in one request.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Created, NewTask};

/// Tasks to queue together: all are queued, or none is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTasks {
    /// The tasks (1 to 1,000), each as `POST /api/v1/tasks` takes one.
    pub tasks: Vec<NewTask>,
}

/// The tasks were queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedMany {
    /// One per task, in the order given.
    pub tasks: Vec<Created>,
}
