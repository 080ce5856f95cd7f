//! Following a task: its guest events, then its final state, on one stream.

use fabric_net::framed::FramedSend;
use fabric_proto::TaskId;
use fabric_proto::wire::Response;

use super::{RequestError, respond};
use crate::service::ServiceError;
use crate::service::state::Shared;
use crate::service::waiters::WaitMsg;

/// Streams `id`'s events until it ends, then its final state; at once when
/// it already ended. The wait ends with its client: when the client's
/// stream or connection closes, the waiter goes even if the task never
/// ends.
pub(crate) async fn follow(
    shared: &Shared,
    id: TaskId,
    send: &mut FramedSend,
) -> Result<(), ServiceError> {
    // Registered first, then checked: an end in between is not missed.
    let waiter = shared.waiters.register(id);
    // The usual case, a submit that waits: the task is queued, and no view
    // (a record clone, its why-waiting) is built only to learn that.
    let early = if shared.unfinished(&id) {
        None
    } else {
        match shared.task_info(&id, true) {
            Ok(Some(info)) if info.state.is_terminal() => Some(Ok(Response::Task(Box::new(info)))),
            Ok(Some(_)) => None,
            Ok(None) => Some(Err(RequestError::no_task(&id))),
            Err(e) => Some(Err(e.into())),
        }
    };
    if let Some(answer) = early {
        drop(waiter);
        return respond(send, answer).await;
    }
    let stopped = send.stopped();
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            msg = waiter.recv() => msg,
            () = &mut stopped => {
                tracing::debug!(task = %id, "the waiting client went away");
                return Ok(());
            }
        };
        match msg {
            // A client that hung up mid-write makes the write fail: the
            // waiter goes with it.
            WaitMsg::Event(e) => send.send(&Response::Event(e)).await?,
            WaitMsg::Done(info) => return respond(send, Ok(Response::Task(info))).await,
            // The dispatcher stopped leading: the client asks the leader.
            WaitMsg::Failed(why) if why.starts_with(crate::service::group::STOPPED_LEADING) => {
                let body = fabric_proto::wire::ErrorBody {
                    message: why,
                    ..shared.group.as_ref().map_or_else(
                        || fabric_proto::wire::ErrorBody::not_leader(None),
                        |g| g.not_leader(),
                    )
                };
                return respond(send, Err(RequestError::Refused(body))).await;
            }
            WaitMsg::Failed(why) => return respond(send, Err(RequestError::Internal(why))).await,
        }
    }
}
