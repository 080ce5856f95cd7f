//! Blob files a member lacks. Chunked blobs (inputs, files) replicate
//! through the log, but snapshots do not carry them (they are files, up to
//! the input cap each): a member that caught up by a snapshot lacks the
//! ones uploaded before it. After each snapshot it installs, and when it
//! takes over, it fetches those its live tasks name from the other members,
//! the leader first, a piece at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_proto::{BLOB_CHUNK, BlobRef, Sha256, TaskKind};
use fabric_store::{Store, StoreError};

use super::Group;
use crate::service::state::Shared;

/// How long one piece may take to arrive.
const PIECE_TTL: Duration = Duration::from_secs(10);

/// The blobs a task's kind and input name.
fn named_by(kind: &TaskKind, input: Option<BlobRef>) -> impl Iterator<Item = BlobRef> + '_ {
    let files: &[fabric_proto::StagedFile] = match kind {
        TaskKind::Command { files, .. } => files,
        TaskKind::Wasm { .. } => &[],
    };
    input.into_iter().chain(files.iter().map(|f| f.blob))
}

/// The blobs live tasks and schedules name that this store lacks.
pub(crate) fn missing(store: &Store) -> Result<Vec<BlobRef>, StoreError> {
    let mut named: BTreeMap<Sha256, BlobRef> = BTreeMap::new();
    let mut add = |b: BlobRef| {
        named.insert(b.sha, b);
    };
    for rec in store.live_tasks()? {
        named_by(&rec.spec.kind, rec.spec.input_blob).for_each(&mut add);
        rec.args_blob.into_iter().for_each(&mut add);
    }
    // A schedule runs again later: what its task or job names too.
    for s in store.schedules()? {
        if let Some(t) = &s.spec.task {
            named_by(&t.kind, t.input_blob).for_each(&mut add);
        }
        for step in s.spec.job.iter().flat_map(|j| &j.steps) {
            named_by(&step.kind, step.input).for_each(&mut add);
            step.each.iter().map(|i| i.blob).for_each(&mut add);
        }
    }
    let mut out = Vec::new();
    for (sha, b) in named {
        if !store.has_blob(&sha)? {
            out.push(b);
        }
    }
    Ok(out)
}

/// Fetches every blob [`missing`] names from the other members; how many
/// it got.
pub(crate) async fn fetch_missing(store: &Store, group: &Group) -> usize {
    let wanted = match missing(store) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the blob files this dispatcher lacks");
            return 0;
        }
    };
    if wanted.is_empty() {
        return 0;
    }
    let status = group.node.status();
    let me = group.node.me().key;
    // The leader first: it has every blob of its term.
    let mut from: Vec<_> = status
        .members
        .iter()
        .filter(|(_, m, _)| m.key != me)
        .map(|(id, m, _)| (Some(*id) != status.leader, m.clone()))
        .collect();
    from.sort_by_key(|(not_leader, _)| *not_leader);
    let mut got = 0;
    for blob in &wanted {
        let mut done = false;
        for (_, member) in &from {
            match fetch(store, group, member.clone(), blob).await {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => {
                    tracing::debug!(sha = %blob.sha, from = %member.addr, error = %e, "fetching a blob file failed")
                }
            }
        }
        if done {
            got += 1;
        } else {
            tracing::warn!(sha = %blob.sha, "no other dispatcher of the group gave the blob file this one lacks: a task naming it cannot get its input until the blob is uploaded again");
        }
    }
    if got > 0 {
        tracing::info!(blobs = got, "fetched the blob files this dispatcher lacked");
    }
    got
}

async fn fetch(
    store: &Store,
    group: &Group,
    member: fabric_raft::Member,
    blob: &BlobRef,
) -> Result<(), String> {
    let mut peer = group.node.peer(member);
    let mut offset = 0u64;
    loop {
        let (bytes, total) = peer
            .blob_range(blob.sha, offset, BLOB_CHUNK as u64, PIECE_TTL)
            .await?;
        if total != blob.len || bytes.is_empty() && blob.len > 0 {
            return Err(format!("it holds {total} bytes, not {}", blob.len));
        }
        let last = offset + bytes.len() as u64 >= blob.len;
        let progress = store
            .put_blob_chunk(&blob.sha, offset, &bytes, last)
            .map_err(|e| e.to_string())?;
        if progress.complete {
            return Ok(());
        }
        offset += bytes.len() as u64;
    }
}

/// Follows this member's snapshots: after one is installed (or built),
/// fetches what the live tasks name and the store lacks.
pub(crate) async fn keep_loop(shared: Arc<Shared>) {
    let Some(group) = shared.group.as_ref() else {
        return;
    };
    let mut metrics = group.node.raft().metrics();
    let mut seen = None;
    loop {
        let snapshot = metrics.borrow().snapshot;
        if snapshot != seen {
            seen = snapshot;
            fetch_missing(&shared.store, group).await;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
