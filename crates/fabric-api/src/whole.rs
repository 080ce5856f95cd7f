//! Writes that run to their end. hyper drops a handler's future when its
//! client hangs up; a submit dropped after its tasks were written but
//! before they were queued left them stored and unqueued until the next
//! restart (up to 1,000 of them for a batch). A handler that writes runs
//! that work on a task of its own and only waits for it there.

use std::future::Future;

use crate::error::ApiError;

/// Runs `work` on its own task, so it ends even if the caller's future is
/// dropped; its output. `held` (the request's caller, with its slot among
/// its token's requests in flight) is kept until the work ends: a client
/// that hangs up does not get its slot back while its write still runs,
/// so hanging up again and again cannot pile up writes past the token's
/// cap.
pub(crate) async fn to_the_end<T, F>(held: impl Send + 'static, work: F) -> Result<T, ApiError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(async move {
        let out = work.await;
        drop(held);
        out
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request's work stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::to_the_end;
    use crate::slots::TokenSlots;

    /// A write whose client hung up (hyper drops the handler) keeps the
    /// token's slot until the write ends, then gives it back.
    #[tokio::test]
    async fn a_write_whose_client_hung_up_holds_its_slot_until_it_ends() {
        let slots = TokenSlots::requests(1);
        let slot = slots.take("t").expect("a first slot");
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let request = tokio::spawn(to_the_end(slot, async move {
            let _ = started.send(());
            let _ = wait.await;
        }));
        running.await.expect("the write started");
        request.abort();
        assert!(request.await.is_err(), "the request was dropped");
        assert!(
            slots.take("t").is_err(),
            "the slot went back while the write still runs"
        );
        go.send(()).expect("the write waits");
        for _ in 0..1_000 {
            if slots.total() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the slot was not given back after the write ended");
    }
}
