//! What a front end of the dispatcher reaches (the REST API, in the
//! `fabric-api` crate): the service's shared state and the request
//! functions the QUIC service itself calls, so both front ends admit,
//! query and refuse alike. Nothing here is for workers.

pub use crate::admission;
pub use crate::metrics::{Metrics, Snapshot};
pub use crate::service::api_tokens;
pub use crate::service::audit::acting;
pub use crate::service::feed::{Feed, FeedEvent};
pub use crate::service::requests::{
    RequestError, blobs, cancel, jobs, query, retry, schedules, submit,
};
pub use crate::service::state::Shared;
pub use crate::service::waiters::{WaitMsg, Waiters};
