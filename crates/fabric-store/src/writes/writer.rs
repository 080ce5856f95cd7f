//! The batching writer: callers' task writes applied together in one
//! transaction, and, for the callers that ask, made durable by one flush
//! that the writer starts itself.
//!
//! sled writes its IO buffer to disk twice for every transaction, however
//! small (it rolls the buffer before and after the batch manifest), each a
//! `pwrite` and a `sync_file_range` on its IO threads. With a submit and a
//! result per task that was most of a busy dispatcher's CPU. [`Writer`]
//! takes the writes that callers hand it while a transaction runs and
//! applies them together in the next one; each caller still learns its own
//! write's outcome.
//!
//! A durable write ([`Writer::write_durable`]) is answered after a flush
//! that started after its transaction, like [`crate::GroupCommit`]'s rule,
//! but without a second hand-off: the writer flushes what it wrote while
//! the next batch gathers, and writes that arrive during a flush share the
//! next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_proto::{TaskOutcome, TaskRecord};
use tokio::sync::{mpsc, oneshot};

use super::TaskWrite;
use crate::{Result, Store, StoreError};

/// The most writes one transaction of the [`Writer`] takes.
pub const MAX_WRITE_BATCH: usize = 256;

/// How many writes may wait for the [`Writer`]; a caller past that waits
/// for room.
pub(super) const WRITE_QUEUE: usize = 4_096;

/// A durable write's answer: whether it was written, and how the flush
/// after it went (a flush that failed may still have written it).
pub type Durable = (bool, Result<()>);

/// Where a write's answer goes.
#[derive(Debug)]
pub(super) enum Reply {
    /// After the transaction.
    Written(oneshot::Sender<Result<bool>>),
    /// After the transaction and a flush that started after it.
    Durable(oneshot::Sender<Result<Durable>>),
}

pub(super) type Pending = (TaskWrite, Reply);

/// Told how long each of the writer's flushes took.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Hands task writes to one writer task, which applies all that are
/// waiting (up to [`MAX_WRITE_BATCH`]) in one transaction.
#[derive(Clone, Debug)]
pub struct Writer {
    pub(super) tx: mpsc::Sender<Pending>,
    stats: Arc<BatchStats>,
    /// Seals the writes callers hand in (on their threads, not the
    /// writer's).
    store: Store,
}

/// How the writer's batches went: how many, and the largest.
#[derive(Debug, Default)]
struct BatchStats {
    batches: std::sync::atomic::AtomicU64,
    largest: std::sync::atomic::AtomicUsize,
}

type Flush = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Written writes waiting for a flush: whether each was written, and where
/// its answer goes.
type Waiting = Vec<(bool, oneshot::Sender<Result<Durable>>)>;

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        Self::start_observed(store, Arc::new(|_| {}))
    }

    /// [`Writer::start`], telling `observe` how long each flush took.
    pub fn start_observed(store: Store, observe: FlushObserver) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(WRITE_QUEUE);
        let stats = Arc::new(BatchStats::default());
        tokio::spawn(run(store.clone(), rx, stats.clone(), observe));
        Self { tx, stats, store }
    }

    /// Applies one write (with whatever others are waiting); whether it was
    /// written, as [`Store::write_batch`] says.
    pub async fn write(&self, w: TaskWrite) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((w, Reply::Written(reply)))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// [`Writer::write`], answered once a flush that started after the
    /// transaction finished: an error is the transaction's (nothing was
    /// written); the flush's own outcome comes with the answer.
    pub async fn write_durable(&self, w: TaskWrite) -> Result<Durable> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((w, Reply::Durable(reply)))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Batches applied so far, and the largest (at most
    /// [`MAX_WRITE_BATCH`]): how much the group commit is sharing.
    pub fn batch_stats(&self) -> (u64, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.stats.batches.load(Relaxed),
            self.stats.largest.load(Relaxed),
        )
    }

    /// [`Store::save_task`] through the writer.
    pub async fn save_task(&self, rec: &TaskRecord) -> Result<bool> {
        self.write(TaskWrite::record(&self.store, rec)?).await
    }

    /// [`Writer::save_task`], durable ([`Writer::write_durable`]).
    pub async fn save_task_durable(&self, rec: &TaskRecord) -> Result<Durable> {
        self.write_durable(TaskWrite::record(&self.store, rec)?)
            .await
    }

    /// [`Store::record_result`] through the writer.
    pub async fn record_result(&self, rec: &TaskRecord, outcome: &TaskOutcome) -> Result<bool> {
        self.write(TaskWrite::result(&self.store, rec, outcome)?)
            .await
    }

    /// [`Writer::record_result`], durable ([`Writer::write_durable`]).
    pub async fn record_result_durable(
        &self,
        rec: &TaskRecord,
        outcome: &TaskOutcome,
    ) -> Result<Durable> {
        self.write_durable(TaskWrite::result(&self.store, rec, outcome)?)
            .await
    }
}

fn stopped() -> StoreError {
    StoreError::Io(std::io::Error::other("the store's writer has stopped"))
}

/// The writer task: applies what is waiting, flushes for those that asked
/// while the next writes gather, until every sender is gone and every
/// answer given.
async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Pending>,
    stats: Arc<BatchStats>,
    observe: FlushObserver,
) {
    let mut batch = Vec::with_capacity(MAX_WRITE_BATCH);
    // Written, waiting for a flush that starts after their transaction.
    let mut next: Waiting = Vec::new();
    // The flush running and the writes it makes durable.
    let mut flushing: Option<(Flush, Waiting)> = None;
    let mut open = true;
    loop {
        if !open && flushing.is_none() {
            return;
        }
        tokio::select! {
            biased;
            done = async { (&mut flushing.as_mut().expect("a flush runs").0).await }, if flushing.is_some() => {
                let (_, waiting) = flushing.take().expect("a flush ran");
                answer(waiting, done);
                if !next.is_empty() {
                    flushing = Some((flush(&store, &observe), std::mem::take(&mut next)));
                }
            }
            got = rx.recv_many(&mut batch, MAX_WRITE_BATCH), if open => {
                if got == 0 {
                    open = false;
                    if !next.is_empty() && flushing.is_none() {
                        flushing = Some((flush(&store, &observe), std::mem::take(&mut next)));
                    }
                    continue;
                }
                apply(&store, &stats, &mut batch, &mut next);
                if flushing.is_none() && !next.is_empty() {
                    flushing = Some((flush(&store, &observe), std::mem::take(&mut next)));
                }
            }
        }
    }
}

/// A flush of everything written so far, timed.
fn flush(store: &Store, observe: &FlushObserver) -> Flush {
    let (store, observe) = (store.clone(), observe.clone());
    Box::pin(async move {
        let started = Instant::now();
        let done = store.flush().await;
        observe(started.elapsed());
        if let Err(e) = &done {
            tracing::error!(error = %e, "store flush failed");
        }
        done
    })
}

/// Tells each of `waiting` how the flush went.
fn answer(waiting: Waiting, flushed: Result<()>) {
    let text = flushed.as_ref().err().map(ToString::to_string);
    for (written, reply) in waiting {
        let flushed = match &text {
            None => Ok(()),
            Some(t) => Err(StoreError::Io(std::io::Error::other(t.clone()))),
        };
        let _ = reply.send(Ok((written, flushed)));
    }
}

/// Applies a batch in one transaction; answers the plain writes, and puts
/// the durable ones that were applied in `next`.
fn apply(store: &Store, stats: &BatchStats, batch: &mut Vec<Pending>, next: &mut Waiting) {
    use std::sync::atomic::Ordering::Relaxed;
    stats.batches.fetch_add(1, Relaxed);
    stats.largest.fetch_max(batch.len(), Relaxed);
    let (writes, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
    match store.write_batch(&writes) {
        Ok(written) => {
            for (reply, w) in replies.into_iter().zip(written) {
                match reply {
                    Reply::Written(r) => {
                        let _ = r.send(Ok(w));
                    }
                    Reply::Durable(r) => next.push((w, r)),
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = writes.len(), "a batch of task writes failed");
            let text = e.to_string();
            let mut first = Some(e);
            for reply in replies {
                let e = first
                    .take()
                    .unwrap_or_else(|| StoreError::Io(std::io::Error::other(text.clone())));
                match reply {
                    Reply::Written(r) => {
                        let _ = r.send(Err(e));
                    }
                    Reply::Durable(r) => {
                        let _ = r.send(Err(e));
                    }
                }
            }
        }
    }
}
