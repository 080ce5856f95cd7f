//! Writes that run to their end. hyper drops a handler's future when its
//! client hangs up; a submit dropped after its tasks were written but
//! before they were queued left them stored and unqueued until the next
//! restart (up to 1,000 of them for a batch). A handler that writes runs
//! that work on a task of its own and only waits for it there.

use std::future::Future;

use crate::error::ApiError;

/// Runs `work` on its own task, so it ends even if the caller's future is
/// dropped; its output.
pub(crate) async fn to_the_end<T, F>(work: F) -> Result<T, ApiError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's work stopped: {e}")))
}
