//! Client requests: one function per request, each returning
//! `Result<Response, RequestError>`; [`RequestError::into_body`] is the one
//! place that maps failures onto the wire.

mod admin;
pub mod after;
pub(crate) mod at_rest;
pub mod blobs;
pub mod cancel;
pub mod jobs;
pub mod query;
pub mod retry;
pub mod schedules;
pub mod submit;
mod wait;

use std::sync::Arc;

use fabric_net::framed::FramedSend;
use fabric_proto::TaskId;
use fabric_proto::wire::{ErrorBody, ErrorCode, Request, Response};
use fabric_store::StoreError;

use super::state::Shared;
use super::{ServiceError, join};

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Admission refused it; the body carries the code and reason.
    #[error("{0}")]
    Refused(ErrorBody),
    /// What it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with the task's state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something the request waited for failed (already logged).
    #[error("{0}")]
    Internal(String),
}

impl RequestError {
    /// The task does not exist.
    pub fn no_task(id: &TaskId) -> Self {
        Self::NotFound(format!("no task {id}"))
    }

    /// This failure of the spec at `index` of a batch of `count`: its
    /// message names the spec's place.
    pub fn in_batch(self, index: usize, count: usize) -> Self {
        let place = |m: String| format!("task {} of {count}: {m}", index + 1);
        match self {
            Self::Refused(mut body) => {
                body.message = place(body.message);
                Self::Refused(body)
            }
            Self::NotFound(m) => Self::NotFound(place(m)),
            Self::Conflict(m) => Self::Conflict(place(m)),
            other => other,
        }
    }

    /// The wire error for this failure.
    pub fn into_body(self) -> ErrorBody {
        match self {
            Self::Refused(body) => body,
            Self::NotFound(m) => ErrorBody::new(ErrorCode::NotFound, m),
            Self::Conflict(m) => ErrorBody::new(ErrorCode::Conflict, m),
            // Leadership moved while the request was served: the client
            // asks again (and is sent to the leader).
            Self::Store(StoreError::NotLeading(why)) => ErrorBody {
                message: why,
                ..ErrorBody::not_leader(None)
            },
            Self::Store(e) => {
                tracing::error!(error = %e, "request failed");
                ErrorBody::new(ErrorCode::Internal, e.to_string())
            }
            Self::Internal(m) => ErrorBody::new(ErrorCode::Internal, m),
        }
    }
}

/// A request's answer.
pub type Answer = Result<Response, RequestError>;

/// Sends the answer (or its error) and ends the stream.
pub async fn respond(send: &mut FramedSend, answer: Answer) -> Result<(), ServiceError> {
    let resp = answer.unwrap_or_else(|e| Response::Error(e.into_body()));
    send.send(&resp).await?;
    send.finish()?;
    Ok(())
}

/// Whether [`serve`] handles this request (joins, registrations and blob
/// fetches are routed elsewhere).
pub fn is_client_request(request: &Request) -> bool {
    !matches!(
        request,
        Request::Join { .. }
            | Request::Register(_)
            | Request::GetBlob { .. }
            | Request::LateReport { .. }
            | Request::GetBlobRange { .. }
            | Request::Raft { .. }
    )
}

/// Whether only admin clients may make this request.
pub fn is_admin_request(request: &Request) -> bool {
    matches!(
        request,
        Request::CreateJoinToken
            | Request::CreateToken { .. }
            | Request::ListTokens
            | Request::RevokeToken { .. }
            | Request::RemoveWorker { .. }
            | Request::Retry { .. }
            | Request::RetryJob { .. }
            | Request::AddSchedule { .. }
            | Request::SetSchedule {
                action: fabric_proto::ScheduleAction::Remove,
                ..
            }
            | Request::Keys { .. }
            | Request::RotateKey { .. }
            | Request::Backup
            | Request::Audit { .. }
            | Request::AddMember { .. }
            | Request::RemoveMember { .. }
    )
}

/// Serves one client request on its stream.
pub async fn serve(
    shared: &Arc<Shared>,
    request: Request,
    send: &mut FramedSend,
) -> Result<(), ServiceError> {
    let answer = match request {
        Request::PutBlob { bytes } => blobs::put(shared, &bytes).await,
        Request::HasBlob { sha } => blobs::has(shared, &sha),
        Request::PutBlobChunk {
            sha,
            offset,
            bytes,
            last,
        } => blobs::put_chunk(shared, &sha, offset, &bytes, last).await,
        Request::Submit { spec, wait } => match submit::submit(shared, *spec).await {
            Ok(submit::Admitted { id, warning }) if wait => {
                send.send(&Response::Submitted { id, warning }).await?;
                return wait::follow(shared, id, send).await;
            }
            Ok(submit::Admitted { id, warning }) => Ok(Response::Submitted { id, warning }),
            Err(e) => Err(e),
        },
        Request::SubmitMany { specs } => submit::submit_many(shared, specs).await.map(|all| {
            Response::SubmittedMany(
                all.into_iter()
                    .map(|a| fabric_proto::wire::SubmittedTask {
                        id: a.id,
                        warning: a.warning,
                    })
                    .collect(),
            )
        }),
        Request::Status { id } => query::task(shared, &id, false),
        Request::Result { id } => query::task(shared, &id, true),
        Request::Wait { id } => return wait::follow(shared, id, send).await,
        Request::List {
            state,
            limit,
            before,
            trace,
        } => query::list(shared, state, trace.as_deref(), limit, before.as_ref()),
        Request::Workers => Ok(query::workers(shared)),
        Request::Counts => query::counts(shared),
        Request::Caps => Ok(query::caps(shared)),
        Request::ResolveTask { prefix } => query::resolve(shared, &prefix),
        Request::Cancel { id } => cancel::cancel(shared, id).await,
        Request::Retry { id } => retry::retry(shared, id).await.map(|a| Response::Submitted {
            id: a.id,
            warning: a.warning,
        }),
        Request::SubmitJob { spec } => jobs::submit(shared, *spec).await,
        Request::Job { id } => jobs::get(shared, &id),
        Request::Jobs { limit, before } => jobs::list(shared, limit, before.as_ref()),
        Request::CancelJob { id } => jobs::cancel(shared, id).await,
        Request::RetryJob { id } => jobs::retry(shared, id).await,
        Request::AddSchedule { spec } => schedules::add(shared, *spec).await,
        Request::Schedules => schedules::list(shared),
        Request::Schedule { name } => schedules::get(shared, &name),
        Request::SetSchedule { name, action } => schedules::set(shared, &name, action).await,
        Request::CreateJoinToken => join::mint(shared, join::TokenRequest::default())
            .await
            .map(|(token, _)| Response::JoinToken {
                token: token.to_string(),
            })
            .map_err(RequestError::from),
        Request::CreateToken { ttl_ms, uses, role } => {
            admin::create_token(shared, ttl_ms, uses, role).await
        }
        Request::ListTokens => admin::list_tokens(shared),
        Request::RevokeToken { id } => admin::revoke_token(shared, &id).await,
        Request::RemoveWorker { key } => admin::remove_worker(shared, &key).await,
        Request::Keys { census } => {
            let s = shared.clone();
            tokio::task::spawn_blocking(move || at_rest::keys(&s, census))
                .await
                .unwrap_or_else(|e| Err(RequestError::Internal(e.to_string())))
        }
        Request::RotateKey { rewrap } => at_rest::rotate(shared, rewrap).await,
        Request::Backup => return at_rest::backup(shared, send).await,
        Request::Audit { limit } => super::audit::list(shared, limit),
        // Alone (a group's members answer in routing).
        Request::Members => Ok(Response::Members(Vec::new())),
        Request::AddMember { key, addr, api_url } => {
            super::group::add_member(shared, fabric_raft::Member { addr, key, api_url }).await
        }
        Request::RemoveMember { key } => super::group::remove_member(shared, key).await,
        Request::Join { .. }
        | Request::Register(_)
        | Request::GetBlob { .. }
        | Request::LateReport { .. }
        | Request::GetBlobRange { .. }
        | Request::Raft { .. } => Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::BadRequest,
            "not a client request",
        ))),
    };
    // Counted as the REST API counts its 4xx answers.
    match &answer {
        Err(RequestError::Refused(body)) => shared.metrics.refused(body.code.as_str()),
        Err(RequestError::NotFound(_)) => shared.metrics.refused("not_found"),
        Err(RequestError::Conflict(_)) => shared.metrics.refused("conflict"),
        _ => {}
    }
    respond(send, answer).await
}
