//! The data at rest, for admins: the keyring (state, rotation, the
//! background rewrap) and backups.

use std::sync::Arc;

use fabric_proto::wire::{KeyInfo, KeysView, Response, RewrapView};
use fabric_store::{EventKind, RewrapProgress};

use super::{Answer, RequestError};
use crate::service::error::ServiceError;
use crate::service::state::Shared;
use fabric_net::framed::FramedSend;

/// Values or files one rewrap step re-seals before it yields.
const REWRAP_STEP: usize = 500;

/// The keyring's state; with `census`, a count of what each key seals.
pub(crate) fn keys(shared: &Shared, census: bool) -> Answer {
    let state = shared.store.keyring().state();
    let census = if census {
        Some(shared.store.key_census()?.into_iter().collect())
    } else {
        None
    };
    let rewrap = shared
        .rewrap
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .map(|(p, error)| view(p, error));
    Ok(Response::Keys(Box::new(KeysView {
        wrap: state.wrap.as_str().to_owned(),
        fingerprint: state.fingerprint,
        keys: state
            .keys
            .iter()
            .map(|(id, created_ms)| KeyInfo {
                id: *id,
                created_ms: *created_ms,
                active: *id == state.active,
            })
            .collect(),
        census,
        rewrap,
    })))
}

fn view(p: RewrapProgress, error: Option<String>) -> RewrapView {
    RewrapView {
        seen: p.seen,
        resealed: p.resealed,
        finished: p.finished,
        key: p.key,
        error,
    }
}

/// Starts a new data key; with `rewrap`, re-seals the old values in the
/// background.
pub(crate) async fn rotate(shared: &Arc<Shared>, rewrap: bool) -> Answer {
    let id = shared
        .store
        .keyring()
        .rotate()
        .map_err(|e| RequestError::Store(e.into()))?;
    shared.event(
        None,
        EventKind::KeyRotated,
        format!(
            "data key {id} seals new values{}",
            if rewrap {
                "; older values are being re-sealed with it"
            } else {
                ""
            }
        ),
    );
    if rewrap {
        // Started over, from the beginning, for the new key.
        shared.store.begin_rewrap()?;
        shared.set_rewrap(Some((
            RewrapProgress {
                key: id,
                ..RewrapProgress::default()
            },
            None,
        )));
        spawn_rewrap(shared.clone());
    }
    shared.ledger.durable().await?;
    keys(shared, false)
}

/// Runs the rewrap under way (started now, or cut short by a restart) to
/// its end, a step at a time, on a blocking thread.
pub(crate) fn spawn_rewrap(shared: Arc<Shared>) {
    use std::sync::atomic::Ordering;
    // One loop at a time: a loop already running picks up a restarted
    // pass from the store's cursor.
    if shared.rewrapping.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        loop {
            let s = shared.clone();
            let step = tokio::task::spawn_blocking(move || s.store.rewrap_step(REWRAP_STEP)).await;
            let why = match step {
                Ok(Ok(progress)) => {
                    shared.set_rewrap(Some((progress, None)));
                    if !progress.finished {
                        tracing::debug!(values = progress.seen, "rewrapping");
                        tokio::task::yield_now().await;
                        continue;
                    }
                    if let Err(e) = shared.ledger.durable().await {
                        tracing::error!(error = %e, "cannot flush after the rewrap");
                    }
                    if again(&shared) {
                        continue;
                    }
                    tracing::info!(
                        values = progress.seen,
                        resealed = progress.resealed,
                        key = progress.key,
                        "rewrap finished: everything is sealed with the active data key"
                    );
                    return;
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("its thread failed: {e}"),
            };
            tracing::error!(error = %why, "the rewrap stopped; it resumes at the next start");
            let p = shared.rewrap_progress().unwrap_or_default();
            shared.set_rewrap(Some((p, Some(why))));
            shared.rewrapping.store(false, Ordering::Release);
            return;
        }
    });
}

/// Whether the loop must go on after a pass finished: a rotation began a
/// new pass meanwhile (seen before the running flag clears, or after it,
/// when that rotation found the flag still set and started no loop).
fn again(shared: &Shared) -> bool {
    use std::sync::atomic::Ordering;
    let pending = || shared.store.rewrap_pending().unwrap_or(false);
    if pending() {
        return true;
    }
    shared.rewrapping.store(false, Ordering::Release);
    pending() && !shared.rewrapping.swap(true, Ordering::AcqRel)
}

/// Takes a backup into the data dir, sends it as pieces, then what it
/// holds, and removes the file.
pub(crate) async fn backup(
    shared: &Arc<Shared>,
    send: &mut FramedSend,
) -> Result<(), ServiceError> {
    let Ok(_one) = shared.backup_lock.try_lock() else {
        return super::respond(
            send,
            Err(RequestError::Conflict(
                "a backup is already being taken; try again when it is done".into(),
            )),
        )
        .await;
    };
    let dir = shared.cfg.data_dir.join("backups");
    let path = dir.join(format!("backup-{}.fbk", fabric_proto::now_ms()));
    let s = shared.clone();
    let p = path.clone();
    let taken = tokio::task::spawn_blocking(move || {
        fabric_net::create_private_dir(&dir)?;
        let data = &s.cfg.data_dir;
        s.store
            .backup(
                &p,
                &[
                    ("node.key", &data.join("node.key")),
                    ("admin.key", &data.join("admin.key")),
                ],
                |_| {},
            )
            .map_err(std::io::Error::other)
    })
    .await;
    let summary = match taken {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return super::respond(
                send,
                Err(RequestError::Store(fabric_store::StoreError::Io(e))),
            )
            .await;
        }
        Err(e) => {
            return super::respond(
                send,
                Err(RequestError::Store(fabric_store::StoreError::Io(
                    std::io::Error::other(e.to_string()),
                ))),
            )
            .await;
        }
    };
    let sent = stream_file(&path, send).await;
    let _ = std::fs::remove_file(&path);
    sent?;
    shared.event(
        None,
        EventKind::Backup,
        format!(
            "backup of {} tasks and {} files ({} bytes)",
            summary.tasks, summary.files, summary.bytes
        ),
    );
    send.send(&Response::BackupDone(summary)).await?;
    Ok(())
}

async fn stream_file(path: &std::path::Path, send: &mut FramedSend) -> Result<(), ServiceError> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| ServiceError::Store(e.into()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| ServiceError::Store(e.into()))?;
        if n == 0 {
            return Ok(());
        }
        send.send(&Response::BackupPiece {
            bytes: buf[..n].to_vec(),
        })
        .await?;
    }
}
