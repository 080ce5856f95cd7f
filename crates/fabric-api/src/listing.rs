//! A page of `GET /api/v1/tasks`: by state from the queue or the store's
//! index, by final status (or dead letter) by scanning the tasks newest
//! first, a bounded number per request.

use fabric_proto::wire::Response;
use fabric_proto::{TaskId, TaskInfo, TaskState};

use super::error::ApiError;
use super::types::Filter;
use fabric_dispatcher::front::Shared;
use fabric_dispatcher::front::query;

/// Tasks one request looks through at most when filtering by status: a
/// rare status over a long history answers in bounded time, with a cursor
/// to go on from.
const MAX_SCANNED: usize = 20_000;
/// Tasks read from the store at a time while scanning.
const SCAN_PAGE: u32 = 500;

/// Up to `limit` tasks older than `before`, and the cursor of the next
/// page when there may be more.
pub(crate) fn page(
    shared: &Shared,
    filter: Option<Filter>,
    trace: Option<&str>,
    limit: u32,
    before: Option<TaskId>,
) -> Result<(Vec<TaskInfo>, Option<String>), ApiError> {
    let keep: Box<dyn Fn(&TaskInfo) -> bool> = match filter {
        None | Some(Filter::State(_)) => {
            let state = match filter {
                Some(Filter::State(s)) => Some(s),
                _ => None,
            };
            let mut page = list(shared, state, trace, limit + 1, before.as_ref())?;
            let next = if page.len() > limit as usize {
                page.truncate(limit as usize);
                page.last().map(|t| t.id.to_string())
            } else {
                None
            };
            return Ok((page, next));
        }
        Some(Filter::Status(s)) => Box::new(move |t| t.status == Some(s)),
        Some(Filter::DeadLetter) => Box::new(|t| t.dead_letter),
    };
    let mut kept = Vec::new();
    let mut cursor = before;
    let mut scanned = 0;
    loop {
        // Every task, newest first, a page at a time: each read costs one
        // page of records whatever the mix, and an empty page is the end.
        let rows = list(shared, None, None, SCAN_PAGE, cursor.as_ref())?;
        let Some(last) = rows.last().map(|t| t.id) else {
            return Ok((kept, None));
        };
        for t in rows {
            scanned += 1;
            if keep(&t) {
                if kept.len() == limit as usize {
                    // One more matches: the next page starts after the last kept.
                    let next = kept.last().map(|t| t.id.to_string());
                    return Ok((kept, next));
                }
                kept.push(t);
            }
        }
        cursor = Some(last);
        if scanned >= MAX_SCANNED {
            // Bounded work per request: go on from here next time.
            return Ok((kept, Some(last.to_string())));
        }
    }
}

fn list(
    shared: &Shared,
    state: Option<TaskState>,
    trace: Option<&str>,
    limit: u32,
    before: Option<&TaskId>,
) -> Result<Vec<TaskInfo>, ApiError> {
    match query::list(shared, state, trace, limit, before)? {
        Response::Tasks(page) => Ok(page),
        _ => Err(ApiError::internal("unexpected answer to a listing")),
    }
}
