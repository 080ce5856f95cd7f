//! Server-Sent Events: one task's events until it ends, and the cluster's
//! live feed.
//!
//! A task's stream sends `progress`, `log` and `output` events as its
//! attempt runs, then one `end` event with the task and its output, and
//! closes. It reads the task's waiter mailbox (bounded: a slow reader
//! loses intermediate progress, never the end) and stops, dropping the
//! waiter, when the client goes. The cluster's stream sends each feed
//! event (`submitted`, `started`, `finished`, and the event log's kinds);
//! a client that falls behind gets a `lagged` event saying how many it
//! missed. Open streams are capped per token and in all
//! ([`super::slots`]), and a stream ends with an `error` event once its
//! token is revoked or expires (checked every 15 s).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_proto::{GuestEvent, TaskId};
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::ApiState;
use super::auth::{Caller, Read};
use super::error::{ApiError, ErrorResponse, TaskPath};
use super::slots::Slot;
use super::types::{OutputView, TaskView};
use fabric_dispatcher::front::FeedEvent;
use fabric_dispatcher::front::Shared;
use fabric_dispatcher::front::WaitMsg;

/// Events buffered between a task's waiter and its HTTP stream.
const STREAM_BUFFER: usize = 64;

type EventStream = Sse<
    axum::response::sse::KeepAliveStream<
        futures_util::stream::BoxStream<'static, Result<Event, Infallible>>,
    >,
>;

fn event(kind: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(kind)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event(kind))
}

#[derive(Serialize)]
struct End<'a> {
    task: TaskView,
    output: Option<OutputView>,
    error: Option<&'a str>,
}

fn guest_event(e: &GuestEvent) -> Event {
    match e {
        GuestEvent::Progress { done, total } => event(
            "progress",
            &serde_json::json!({"done": done, "total": total}),
        ),
        GuestEvent::Log { level, message } => event(
            "log",
            &serde_json::json!({"level": level, "message": message}),
        ),
        GuestEvent::Output { stream, bytes } => {
            let body = match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::json!({"stream": stream, "text": text}),
                Err(_) => serde_json::json!({"stream": stream, "b64": B64.encode(bytes)}),
            };
            event("output", &body)
        }
    }
}

fn end_event(info: &fabric_proto::TaskInfo) -> Event {
    let output = info.outcome.as_ref().map(|o| OutputView::new(info, o));
    event(
        "end",
        &End {
            task: TaskView::from(info),
            output,
            error: None,
        },
    )
}

/// How often an open stream checks that its token is still valid.
const RECHECK: Duration = Duration::from_secs(15);

/// Follows one task for `tx`, until it ends, the client goes or its token
/// is revoked or expires.
async fn follow(shared: Arc<Shared>, id: TaskId, tx: mpsc::Sender<Event>, slot: Slot) {
    // Registered first, then checked: an end in between is not missed.
    let waiter = shared.waiters.register(id);
    match shared.task_info(&id, true) {
        Ok(Some(info)) if info.state.is_terminal() => {
            let _ = tx.send(end_event(&info)).await;
            return;
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            let _ = tx
                .send(event(
                    "error",
                    &serde_json::json!({"message": format!("no task {id}")}),
                ))
                .await;
            return;
        }
        Err(e) => {
            let _ = tx
                .send(event(
                    "error",
                    &serde_json::json!({"message": e.to_string()}),
                ))
                .await;
            return;
        }
    }
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        let msg = tokio::select! {
            msg = waiter.recv() => msg,
            () = tx.closed() => return,
            _ = recheck.tick() => {
                if !slot.token_valid(&shared) {
                    let _ = tx.send(revoked()).await;
                    return;
                }
                continue;
            }
        };
        let (ev, last) = match msg {
            WaitMsg::Event(e) => (guest_event(&e), false),
            WaitMsg::Done(info) => (end_event(&info), true),
            WaitMsg::Failed(why) => (event("error", &serde_json::json!({"message": why})), true),
        };
        if tx.send(ev).await.is_err() || last {
            return;
        }
    }
}

/// Stream one task's events until it ends.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Server-Sent Events: progress, log, output, then end",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn task_events(
    caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<EventStream, ApiError> {
    if st.shared.task_info(&id, false)?.is_none() {
        return Err(ApiError::not_found(format!("no task {id}")));
    }
    let slot = st.streams.take(&caller.id)?;
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(follow(st.shared.clone(), id, tx, slot));
    let stream = ReceiverStream::new(rx).map(Ok).boxed();
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Serialize)]
struct FeedJson {
    at_ms: u64,
    kind: &'static str,
    task: Option<String>,
    status: Option<&'static str>,
    detail: String,
}

fn feed_event(ev: FeedEvent) -> Event {
    event(
        ev.kind,
        &FeedJson {
            at_ms: ev.at_ms,
            kind: ev.kind,
            task: ev.task.map(|t| t.to_string()),
            status: ev.status.map(|s| s.as_str()),
            detail: ev.detail,
        },
    )
}

fn revoked() -> Event {
    event(
        "error",
        &serde_json::json!({"message": "the token was revoked or expired"}),
    )
}

/// Forwards the cluster feed (`rx`) to `tx` until the client goes or its
/// token is revoked or expires.
async fn forward_feed(
    shared: Arc<Shared>,
    mut rx: broadcast::Receiver<FeedEvent>,
    tx: mpsc::Sender<Event>,
    slot: Slot,
) {
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        let ev = tokio::select! {
            got = rx.recv() => match got {
                Ok(ev) => feed_event(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    event("lagged", &serde_json::json!({"missed": n}))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tx.closed() => return,
            _ = recheck.tick() => {
                if slot.token_valid(&shared) {
                    continue;
                }
                let _ = tx.send(revoked()).await;
                return;
            }
        };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

/// Stream what happens in the cluster, as it happens.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses(
        (status = 200, description = "Server-Sent Events: submitted, started, finished, lost, retry, worker_registered, ...",
            content_type = "text/event-stream", body = String),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn cluster_events(
    caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
) -> Result<EventStream, ApiError> {
    let slot = st.streams.take(&caller.id)?;
    // Subscribed before the response starts: a client that has its
    // headers sees every event from then on.
    let feed = st.shared.feed.subscribe();
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(forward_feed(st.shared.clone(), feed, tx, slot));
    let stream = ReceiverStream::new(rx).map(Ok).boxed();
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
