//! The leader's proposer: writes queue here in the order they are made,
//! and one task sends what is queued as one Raft entry at a time (a
//! [`Command::Many`] when there are several), so a burst of writes costs
//! one replication round, as it costs one flush on a single dispatcher.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use fabric_raft::{RaftNode, WriteError};
use fabric_store::{Applied, Command, StoreError};
use tokio::sync::{Notify, oneshot, watch};

/// Most writes waiting to be proposed; past it a write is refused (the
/// group cannot keep up, or has no leader).
const MAX_QUEUED: usize = 65_536;
/// Most writes in one entry.
const MAX_BATCH: usize = 1_024;
/// An entry stops growing past this many bytes (one write may be larger:
/// a module). Kept small enough that an entry replicates within one
/// heartbeat interval on a busy machine (see fabric-raft's log store).
const MAX_ENTRY_BYTES: usize = 1 << 20;
/// The largest entry: it must travel in one frame (16 MiB) with room for
/// the RPC's own fields.
const MAX_ENTRY_HARD: usize = (16 << 20) - (128 << 10);
/// A write not committed by then fails (a leader cut off from the
/// majority, say): the caller hears of it instead of waiting for ever.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one try to have a member's setup write taken lasts: longer
/// than the node's own tries (3 s here, then 10 s for the leader to
/// commit it), so a try is not cut short while the leader may still commit
/// it behind the caller's back (and it is sent again).
const FORWARD_TRY: std::time::Duration = std::time::Duration::from_secs(15);

type Reply = oneshot::Sender<Result<Applied, String>>;

struct Queue {
    items: VecDeque<(Command, Option<Reply>)>,
    /// Writes queued since the start (a write's ticket is the count after
    /// it).
    queued: u64,
}

struct Inner {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Writes committed and applied, in queue order; and why the first
    /// failed entry failed (every later wait fails with it: a leader that
    /// cannot commit is on its way out).
    done: watch::Sender<(u64, Option<String>)>,
    /// One join token use at a time.
    token: tokio::sync::Mutex<()>,
}

/// Proposes the leader's writes.
#[derive(Clone)]
pub(crate) struct Proposer {
    inner: Arc<Inner>,
}

fn failed(why: impl Into<String>) -> StoreError {
    StoreError::NotLeading(why.into())
}

impl Proposer {
    /// Starts the proposing task on the current runtime.
    /// `forward`: it sends to the leader wherever it is, and tries again
    /// until a leader takes the write (a member's setup, see
    /// [`super::setup`]).
    pub(crate) fn start(node: RaftNode, forward: bool) -> Self {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                queued: 0,
            }),
            wake: Notify::new(),
            done: watch::channel((0, None)).0,
            token: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(propose_loop(inner.clone(), node, forward));
        Self { inner }
    }

    fn push(&self, cmd: Command, reply: Option<Reply>) -> Result<u64, StoreError> {
        if let Some(why) = &self.inner.done.borrow().1 {
            return Err(failed(why.clone()));
        }
        if let Command::Blob(b) = &cmd
            && b.len() + 1024 > MAX_ENTRY_HARD
        {
            return Err(failed(format!(
                "a module of {} bytes is over what a group of dispatchers replicates in one piece ({} bytes)",
                b.len(),
                MAX_ENTRY_HARD - 1024
            )));
        }
        let ticket = {
            let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.items.len() >= MAX_QUEUED {
                return Err(failed(format!(
                    "{MAX_QUEUED} writes are waiting for the dispatchers' Raft log; try again shortly"
                )));
            }
            q.items.push_back((cmd, reply));
            q.queued += 1;
            q.queued
        };
        self.inner.wake.notify_one();
        Ok(ticket)
    }

    /// Queues a write; [`Proposer::durable`] waits for it.
    pub(crate) fn queue(&self, cmd: Command) -> Result<(), StoreError> {
        self.push(cmd, None).map(drop)
    }

    /// Proposes a task write and waits for it: whether it was written.
    pub(crate) async fn written(&self, cmd: Command) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.push(cmd, Some(tx))?;
        match rx.await.map_err(|_| failed("the proposer stopped"))? {
            Ok(Applied::Written(w)) => Ok(w.first().copied().unwrap_or(false)),
            Ok(other) => Err(failed(format!(
                "unexpected answer to a task write: {other:?}"
            ))),
            Err(why) => Err(failed(why)),
        }
    }

    /// Proposes a write and waits until it is committed and applied here:
    /// what applying it said.
    pub(crate) async fn commit(&self, cmd: Command) -> Result<Applied, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.push(cmd, Some(tx))?;
        rx.await
            .map_err(|_| failed("the proposer stopped"))?
            .map_err(failed)
    }

    /// Waits until every write queued before the call is committed on a
    /// majority and applied here.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        let ticket = self
            .inner
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .queued;
        let mut rx = self.inner.done.subscribe();
        let seen = rx
            .wait_for(|(through, why)| *through >= ticket || why.is_some())
            .await
            .map_err(|_| failed("the proposer stopped"))?;
        match &*seen {
            (through, _) if *through >= ticket => Ok(()),
            (_, why) => Err(failed(why.clone().unwrap_or_default())),
        }
    }

    /// Whether it was closed (or failed).
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.done.borrow().1.is_some()
    }

    /// Ends this proposer: waits fail with `why`, and so does every
    /// write queued from now on.
    pub(crate) fn close(&self, why: &str) {
        self.inner.done.send_modify(|d| {
            d.1.get_or_insert_with(|| why.to_owned());
        });
        self.inner.wake.notify_one();
    }

    /// One join token use at a time.
    pub(crate) async fn token_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.token.lock().await
    }
}

/// Takes the next batch off the queue: the writes and how many have been
/// taken in all after it.
fn take(inner: &Inner, taken: &mut u64) -> Vec<(Command, Option<Reply>)> {
    let mut q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some((cmd, _)) = q.items.front() {
        let size = approx_size(cmd);
        if !batch.is_empty() && (batch.len() >= MAX_BATCH || bytes + size > MAX_ENTRY_BYTES) {
            break;
        }
        bytes += size;
        batch.extend(q.items.pop_front());
    }
    *taken += batch.len() as u64;
    batch
}

/// About how many bytes a write takes in the log (its large parts).
fn approx_size(cmd: &Command) -> usize {
    use fabric_store::TaskOp;
    let outcome = |o: &fabric_proto::TaskOutcome| {
        o.stdout.len() + o.stderr.len() + o.files.iter().map(|f| f.bytes.len()).sum::<usize>()
    };
    match cmd {
        Command::Blob(b) => b.len(),
        Command::BlobPiece { bytes, .. } => bytes.len() + 128,
        Command::Tasks { ops, .. } => ops
            .iter()
            .map(|op| match op {
                TaskOp::Record(r) => 512 + r.spec.input.len(),
                TaskOp::Result(r, o) => 512 + r.spec.input.len() + outcome(o),
            })
            .sum(),
        Command::AmendCancelled { run, .. } => 512 + outcome(run),
        _ => 512,
    }
}

async fn propose_loop(strong: Arc<Inner>, node: RaftNode, forward: bool) {
    let mut taken = 0u64;
    loop {
        if let Some(why) = strong.done.borrow().1.clone() {
            // Closed (or failed): nothing more goes out of this term.
            let mut q = strong.queue.lock().unwrap_or_else(|p| p.into_inner());
            for (_, reply) in q.items.drain(..) {
                if let Some(r) = reply {
                    let _ = r.send(Err(why.clone()));
                }
            }
            return;
        }
        let batch = take(&strong, &mut taken);
        if batch.is_empty() {
            // Nobody else holds the proposer: the ledger is gone.
            if Arc::strong_count(&strong) == 1 {
                return;
            }
            // Woken by a write, or now and then to notice the above.
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                strong.wake.notified(),
            )
            .await;
            continue;
        }
        let (mut cmds, mut replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        // The exact size, when the estimate comes near it: an entry over a
        // frame could never replicate.
        let near = cmds.iter().map(approx_size).sum::<usize>() > MAX_ENTRY_BYTES / 4;
        while near && cmds.len() > 1 && encoded_len(&Command::Many(cmds.clone())) > MAX_ENTRY_HARD {
            // The second half goes back to the front of the queue.
            let back_c = cmds.split_off(cmds.len() / 2);
            let back_r = replies.split_off(replies.len() / 2);
            taken -= back_c.len() as u64;
            let mut q = strong.queue.lock().unwrap_or_else(|p| p.into_inner());
            for item in back_c.into_iter().zip(back_r).rev() {
                q.items.push_front(item);
            }
        }
        if near && cmds.len() == 1 && encoded_len(&cmds[0]) > MAX_ENTRY_HARD {
            let why = format!(
                "a write of {} bytes is over the {MAX_ENTRY_HARD}-byte limit of one entry of the dispatchers' log",
                encoded_len(&cmds[0])
            );
            for r in replies.into_iter().flatten() {
                let _ = r.send(Err(why.clone()));
            }
            strong.done.send_modify(|d| {
                d.1.get_or_insert(why);
            });
            continue;
        }
        let cmd = if cmds.len() == 1 {
            cmds.into_iter().next().unwrap_or(Command::Many(Vec::new()))
        } else {
            Command::Many(cmds)
        };
        let single = replies.len() == 1;
        let written = if forward {
            forwarded(&node, cmd).await
        } else {
            match tokio::time::timeout(COMMIT_TIMEOUT, node.write(cmd)).await {
                Ok(w) => w,
                Err(_) => Err(WriteError::Failed(format!(
                    "the write was not committed within {COMMIT_TIMEOUT:?}: this dispatcher may be cut off from the others"
                ))),
            }
        };
        match written {
            Ok(applied) => {
                let answers = match applied {
                    Applied::Many(all) if !single => all,
                    one => vec![one],
                };
                for (reply, answer) in replies.into_iter().zip(answers) {
                    if let Some(r) = reply {
                        let _ = r.send(Ok(answer));
                    }
                }
                strong.done.send_modify(|d| d.0 = taken);
            }
            Err(e) => {
                let why = match &e {
                    WriteError::NotLeader(_) => format!(
                        "{e}; this dispatcher stopped leading before the write was committed: ask again"
                    ),
                    _ => e.to_string(),
                };
                tracing::warn!(error = %why, "a write was not committed");
                for r in replies.into_iter().flatten() {
                    let _ = r.send(Err(why.clone()));
                }
                strong.done.send_modify(|d| {
                    d.1.get_or_insert(why);
                });
            }
        }
    }
}

/// Sends `cmd` to the leader until one takes it. Each try is bounded: a
/// member restarted as the leader of a term the others have left takes
/// the write into its own log, where openraft answers it only once the
/// entry is committed or overwritten (which can take as long as the new
/// leader takes to reach it).
async fn forwarded(node: &RaftNode, cmd: Command) -> Result<Applied, WriteError> {
    let started = std::time::Instant::now();
    let mut said = std::time::Instant::now();
    loop {
        let tried = tokio::time::timeout(FORWARD_TRY, node.write_forwarded(cmd.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(WriteError::Failed(format!(
                    "no leader took it within {FORWARD_TRY:?}"
                )))
            });
        match tried {
            Ok(a) => return Ok(a),
            Err(e) => {
                if said.elapsed() > std::time::Duration::from_secs(5) {
                    tracing::info!(error = %e, waited_s = started.elapsed().as_secs(), "waiting for a leader to take this dispatcher's setup");
                    said = std::time::Instant::now();
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

fn encoded_len(cmd: &Command) -> usize {
    fabric_proto::to_cbor(cmd).map_or(usize::MAX, |b| b.len())
}
