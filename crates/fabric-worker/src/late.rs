//! Reports whose own stream broke: sent again on the current connection as
//! `LateReport`, or kept (a bounded few) until the next session.

use std::collections::VecDeque;
use std::sync::Mutex;

use fabric_net::framed;
use fabric_proto::wire::{Request, Response};
use fabric_proto::{TaskId, TaskOutcome};
use quinn::Connection;

use crate::State;

/// Outcomes kept for a later session at most.
const MAX_UNREPORTED: usize = 64;
/// How long one late report may take.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Outcomes not reported yet.
#[derive(Debug, Default)]
pub(crate) struct Unreported(Mutex<VecDeque<(TaskId, u32, TaskOutcome)>>);

impl Unreported {
    fn push(&self, item: (TaskId, u32, TaskOutcome)) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_UNREPORTED {
            let (id, attempt, _) = q.pop_front().expect("not empty");
            tracing::warn!(task = %id, attempt, "dropping an unreported result (too many kept)");
        }
        q.push_back(item);
    }

    /// The attempts kept, for a registration to report as its own.
    pub(crate) fn keys(&self) -> Vec<(TaskId, u32)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, attempt, _)| (*id, *attempt))
            .collect()
    }

    fn take(&self) -> Vec<(TaskId, u32, TaskOutcome)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }
}

/// Reports an outcome whose assignment stream broke: now, on the current
/// connection if there is one, else after the next registration.
pub(crate) async fn report(state: &State, id: TaskId, attempt: u32, outcome: TaskOutcome) {
    match state.connection() {
        Some(conn) => {
            if let Err(outcome) = send(state, &conn, id, attempt, outcome).await {
                state.unreported.push((id, attempt, outcome));
            }
        }
        None => state.unreported.push((id, attempt, outcome)),
    }
}

/// Sends what was kept, after a registration.
pub(crate) async fn flush(state: &State, conn: &Connection) {
    for (id, attempt, outcome) in state.unreported.take() {
        if let Err(outcome) = send(state, conn, id, attempt, outcome).await {
            state.unreported.push((id, attempt, outcome));
        }
    }
}

/// One late report; gives the outcome back when it did not get through.
async fn send(
    state: &State,
    conn: &Connection,
    id: TaskId,
    attempt: u32,
    outcome: TaskOutcome,
) -> Result<(), TaskOutcome> {
    // A rare path: a copy keeps the outcome for another try.
    let req = Request::LateReport {
        id,
        attempt,
        outcome: Box::new(outcome.clone()),
    };
    let sent = tokio::time::timeout(SEND_TIMEOUT, async {
        let (mut send, mut recv) = framed::open(conn, state.cfg.net.max_frame).await?;
        send.send(&req).await?;
        send.finish()?;
        recv.expect::<Response>().await
    })
    .await
    .unwrap_or(Err(fabric_net::StreamError::Eof));
    match sent {
        Ok(Response::Ack(ack)) => {
            tracing::info!(task = %id, attempt, recorded = ack.recorded, "late report taken");
            Ok(())
        }
        Ok(other) => {
            tracing::warn!(task = %id, attempt, answer = ?other, "late report not taken");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(task = %id, attempt, error = %e, "cannot send a late report yet");
            Err(outcome)
        }
    }
}
