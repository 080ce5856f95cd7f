//! One assignment stream from the dispatcher: a cancel, or a run — verify
//! the manifest, fetch a large input, get the module, execute, report, wait
//! for the ack.

use std::sync::Arc;
use std::time::Duration;

use fabric_net::StreamError;
use fabric_net::framed::{FramedRecv, FramedSend};
use fabric_proto::wire::{Ack, Assign, Report};
use fabric_proto::{Manifest, Signed, TaskKind, TaskOutcome, TaskStatus};
use quinn::Connection;
use tracing::Instrument as _;

use crate::State;
use crate::execute::execute;
use crate::inputs;
use crate::verify::{Refusal, verify_manifest};

/// How long a report waits for the dispatcher's ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refusal waits for its ack.
const REFUSAL_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How far past its timeout a run may go before the worker stops it
/// (the sandbox stops it at the timeout; this is the backstop).
const RUN_GRACE: Duration = Duration::from_secs(2);
/// The same backstop for a native run, which also stages files in and
/// collects them after. Shorter than the lease's grace, so the worker has
/// stopped the run (killing every process of it) before the dispatcher
/// gives the task to another worker.
const NATIVE_GRACE: Duration = Duration::from_secs(5);
const _: () = assert!(NATIVE_GRACE.as_millis() < fabric_proto::DEFAULT_LEASE_GRACE_MS as u128);

/// Serves one stream the dispatcher opened.
pub(crate) async fn serve(
    state: &Arc<State>,
    conn: &Connection,
    mut send: FramedSend,
    mut recv: FramedRecv,
) -> Result<(), StreamError> {
    let (signed, input, input_blob) = match recv.expect::<Assign>().await? {
        Assign::Cancel { id, attempt } => {
            if state.slots.cancel((id, attempt)) {
                tracing::info!(task = %id, attempt, "cancelling on request");
            } else {
                tracing::debug!(task = %id, attempt, "cancel before the task started here");
            }
            return Ok(());
        }
        Assign::Run {
            manifest,
            input,
            input_blob,
        } => (manifest, input, input_blob),
    };
    // Counted from arrival until the ack, so a drain waits for assignments
    // still fetching their module and for the report too.
    let _active = state.slots.arrive();
    if state.slots.is_draining() {
        return refuse(&mut send, &mut recv, Refusal::Draining).await;
    }
    let inline = input_blob.is_none().then_some(input.as_slice());
    let manifest = match verify(state, &signed, inline) {
        Ok(m) => m,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "refusing an assignment");
            return refuse(&mut send, &mut recv, refusal).await;
        }
    };
    let span = tracing::info_span!(
        "task",
        task_id = %manifest.task_id,
        attempt = manifest.attempt,
        trace = %manifest.trace.as_deref().unwrap_or("-")
    );
    span.in_scope(|| tracing::info!("manifest verified; running"));
    let input = match input_blob {
        None => input,
        Some(blob) => {
            let max = state.cfg.net.max_frame;
            match inputs::fetch(conn, max, &manifest, blob)
                .instrument(span.clone())
                .await
            {
                Ok(bytes) => bytes,
                Err(refusal) => {
                    tracing::warn!(reason = %refusal, "refusing an assignment");
                    return refuse(&mut send, &mut recv, refusal).await;
                }
            }
        }
    };
    run(state, conn, manifest, input, send, recv)
        .instrument(span)
        .await
}

fn verify(
    state: &State,
    signed: &Signed<Manifest>,
    input: Option<&[u8]>,
) -> Result<Manifest, Refusal> {
    let now = state.cfg.clock.now_ms();
    let mut replay = state.replay.lock().unwrap_or_else(|p| p.into_inner());
    verify_manifest(signed, input, &[state.serving_key().0], now, &mut replay)
}

/// A verified attempt: module, execution, report and ack.
async fn run(
    state: &Arc<State>,
    conn: &Connection,
    manifest: Manifest,
    input: Vec<u8>,
    mut send: FramedSend,
    mut recv: FramedRecv,
) -> Result<(), StreamError> {
    if let TaskKind::Command {
        program,
        files,
        outputs,
    } = &manifest.kind
    {
        let native = state.native.as_ref();
        let Some((runner, path)) =
            native.and_then(|(allow, runner)| Some((runner, allow.lookup(program)?.to_owned())))
        else {
            let refusal = Refusal::NotAllowed(program.clone());
            tracing::warn!(reason = %refusal, "refusing an assignment");
            return refuse(&mut send, &mut recv, refusal).await;
        };
        let (staged, _pins) = match state
            .files
            .get_all(conn, state.cfg.net.max_frame, files)
            .await
        {
            Ok(s) => s,
            Err(refusal) => {
                tracing::warn!(reason = %refusal, "refusing an assignment");
                return refuse(&mut send, &mut recv, refusal).await;
            }
        };
        let (handle, cancelled) = state.slots.start((manifest.task_id, manifest.attempt));
        let job = crate::native::Job {
            program: path,
            input,
            files: staged,
            outputs: outputs.clone(),
        };
        // The runner keeps the timeout itself; this deadline holds whatever
        // happens around the run (staging, collecting, cleaning up).
        let deadline = Duration::from_millis(manifest.limits.timeout_ms) + NATIVE_GRACE;
        let run = crate::native::run(runner, &manifest, job, cancelled, &mut send);
        let outcome = within_deadline(run, deadline, &manifest).await;
        tracing::debug!(status = %outcome.status, "native task finished");
        let delivered = report(state, &manifest, outcome, &mut send, &mut recv).await;
        state.slots.finish(handle);
        return delivered;
    }
    let module = match state.modules.module_for(conn, &manifest).await {
        Ok(m) => m,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "refusing an assignment");
            return refuse(&mut send, &mut recv, refusal).await;
        }
    };
    let (handle, cancelled) = state.slots.start((manifest.task_id, manifest.attempt));
    let runtime = state.modules.runtime();
    // The sandbox enforces the timeout itself; this outer deadline holds
    // whatever happens inside it.
    let deadline = Duration::from_millis(manifest.limits.timeout_ms) + RUN_GRACE;
    let run = execute(runtime, &manifest, module, input, cancelled, &mut send);
    let outcome = within_deadline(run, deadline, &manifest).await;
    tracing::debug!(status = %outcome.status, "task finished");
    // The attempt stays registered as running until its result is acked or
    // handed to the late reports, so a re-registration in between reports
    // it (and the dispatcher keeps its lease).
    let delivered = report(state, &manifest, outcome, &mut send, &mut recv).await;
    state.slots.finish(handle);
    delivered
}

/// The run's outcome, or timed out once `deadline` passes whatever the
/// run does (the worker's own stop, behind the sandbox's).
async fn within_deadline(
    run: impl Future<Output = TaskOutcome>,
    deadline: Duration,
    manifest: &Manifest,
) -> TaskOutcome {
    tokio::time::timeout(deadline, run)
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("the run passed its deadline; stopped by the worker");
            TaskOutcome::ended(
                TaskStatus::TimedOut,
                format!(
                    "timed out after {} ms (stopped by the worker)",
                    manifest.limits.timeout_ms
                ),
            )
        })
}

/// Reports the outcome and waits for the ack; when the stream breaks
/// first, on either side of the report, the outcome goes as a late report
/// (the dispatcher drops a duplicate as stale).
async fn report(
    state: &State,
    manifest: &Manifest,
    outcome: TaskOutcome,
    send: &mut FramedSend,
    recv: &mut FramedRecv,
) -> Result<(), StreamError> {
    let report = Report::Done(Box::new(outcome));
    let acked = match send.send(&report).await {
        Ok(()) => tokio::time::timeout(ACK_TIMEOUT, recv.expect::<Ack>()).await,
        Err(e) => Ok(Err(e)),
    };
    let why = match acked {
        Ok(Ok(ack)) => {
            if !ack.recorded {
                tracing::debug!("result acknowledged but not recorded (stale or retried)");
            }
            return Ok(());
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no ack within {ACK_TIMEOUT:?}"),
    };
    tracing::warn!(%why, "the result did not get through on its stream; reporting late");
    if let Report::Done(outcome) = report {
        crate::late::report(state, manifest.task_id, manifest.attempt, *outcome).await;
    }
    Ok(())
}

async fn refuse(
    send: &mut FramedSend,
    recv: &mut FramedRecv,
    refusal: Refusal,
) -> Result<(), StreamError> {
    send.send(&Report::Refused {
        reason: refusal.to_string(),
    })
    .await?;
    let _ = tokio::time::timeout(REFUSAL_ACK_TIMEOUT, recv.expect::<Ack>()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use fabric_proto::{Limits, Sha256, TaskId};

    use super::*;

    fn manifest(timeout_ms: u64) -> Manifest {
        Manifest {
            version: Manifest::VERSION,
            task_id: TaskId::new(),
            attempt: 1,
            kind: TaskKind::command("sh"),
            args: vec![],
            env: vec![],
            input_digest: Sha256::of(b""),
            limits: Limits {
                timeout_ms,
                ..Limits::default()
            },
            issued_at_ms: 0,
            expires_at_ms: u64::MAX,
            trace: None,
            secrets: Vec::new(),
        }
    }

    /// The worker's own backstop: a run that has not ended by its timeout
    /// plus the grace is stopped and reported as timed out, whatever the
    /// sandbox below it does (time is tokio's paused clock: no waiting).
    #[tokio::test(start_paused = true)]
    async fn a_run_past_its_timeout_and_grace_is_stopped_by_the_worker() {
        let m = manifest(1_000);
        let deadline = Duration::from_millis(m.limits.timeout_ms) + NATIVE_GRACE;
        let stuck = within_deadline(std::future::pending(), deadline, &m).await;
        assert_eq!(stuck.status, TaskStatus::TimedOut);
        assert_eq!(
            stuck.message.as_deref(),
            Some("timed out after 1000 ms (stopped by the worker)")
        );
        // A run that ends inside its deadline keeps its own outcome.
        let done = async {
            tokio::time::sleep(deadline - Duration::from_millis(1)).await;
            TaskOutcome::ended(TaskStatus::Succeeded, "exited with code 0")
        };
        assert_eq!(
            within_deadline(done, deadline, &m).await.status,
            TaskStatus::Succeeded
        );
    }
}
