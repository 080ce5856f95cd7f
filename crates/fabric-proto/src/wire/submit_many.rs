//! Limits and answers of a submit of many tasks in one request.

use serde::{Deserialize, Serialize};

use crate::TaskId;

/// Most tasks one [`super::Request::SubmitMany`] may queue.
pub const MAX_SUBMIT_BATCH: usize = 1_000;

/// Most bytes of args, env and inline inputs one [`super::Request::SubmitMany`]
/// may carry, well inside a frame ([`crate::DEFAULT_MAX_FRAME`]).
pub const MAX_SUBMIT_BATCH_BYTES: usize = 8 << 20;

/// One task of a [`super::Response::SubmittedMany`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedTask {
    /// Its id.
    pub id: TaskId,
    /// Why it may wait a long time, when that is so.
    #[serde(default)]
    pub warning: Option<String>,
}
