//! Where the dispatcher's writes go: its own store ([`Ledger::local`],
//! today's single dispatcher, unchanged), or the Raft log of a group of
//! dispatchers ([`Ledger::raft`], issue 26), from which every member's
//! store applies them.
//!
//! The callers are the same either way: they write (a task, a result, an
//! event, a token...), then wait for [`Ledger::durable`] before they tell
//! anyone. Locally a write goes to the store at once and `durable` waits
//! for the group commit's flush. In a group a write becomes a [`Command`]
//! queued for the [`Proposer`](raft::Proposer), which sends what is queued
//! as one Raft entry; `durable` waits until a majority holds every write
//! made before it, and the leader has applied them. Reads go to the store
//! either way: in a group they see a write once it is applied.

mod blobs;
mod raft;
mod trust;

use fabric_proto::{JobRecord, ScheduleRecord, Sha256, TaskId, TaskOutcome, TaskRecord};
use fabric_store::{Command, Durable, GroupCommit, Store, StoreError, StoredEvent, TaskOp, Writer};

pub(crate) use raft::Proposer;

tokio::task_local! {
    /// Set while a member makes its own setup writes.
    static SETUP: bool;
}

/// Runs `f` as this member's own setup (its admin key, its tokens): in a
/// group, its writes reach the leader even when this member does not lead
/// (they wait for one). Request handlers never run inside it, so a member
/// that just stopped leading cannot write behind the new leader's back.
pub(crate) async fn setup<F: std::future::Future>(f: F) -> F::Output {
    SETUP.scope(true, f).await
}

/// The dispatcher's write path.
pub(crate) enum Ledger {
    /// One dispatcher: its store, the batched task writer and the group
    /// commit.
    Local {
        /// The store.
        store: Store,
        /// Batched task writes on the hot path.
        writer: Writer,
        /// Batched flushes.
        commit: GroupCommit,
    },
    /// A member of a Raft group (it writes only while it leads).
    Raft {
        /// The store (reads, and the values a write needs first).
        store: Store,
        /// This member's Raft node.
        node: fabric_raft::RaftNode,
        /// The queue of commands to propose, one per term this member
        /// leads (a term's proposer that failed stays failed).
        term: std::sync::RwLock<Proposer>,
        /// While it does not lead: the member's own setup writes (inside
        /// [`setup`]), forwarded to the leader.
        forward: Proposer,
    },
}

impl Ledger {
    /// Today's single dispatcher; `observe` is told how long each of the
    /// writer's flushes took.
    pub(crate) fn local(
        store: Store,
        commit: GroupCommit,
        observe: fabric_store::FlushObserver,
    ) -> Self {
        Self::Local {
            writer: Writer::start_observed(store.clone(), observe),
            store,
            commit,
        }
    }

    /// A leader of a Raft group.
    pub(crate) fn raft(store: Store, node: fabric_raft::RaftNode) -> Self {
        let first = Proposer::start(node.clone(), false);
        first.close("this dispatcher does not lead its group");
        Self::Raft {
            store,
            forward: Proposer::start(node.clone(), true),
            node,
            term: std::sync::RwLock::new(first),
        }
    }

    /// Whether writes go through a Raft log.
    pub(crate) fn is_raft(&self) -> bool {
        matches!(self, Self::Raft { .. })
    }

    /// This member's Raft node, in a group.
    pub(crate) fn node(&self) -> Option<&fabric_raft::RaftNode> {
        match self {
            Self::Local { .. } => None,
            Self::Raft { node, .. } => Some(node),
        }
    }

    /// A new term as leader: writes go to a fresh proposer.
    pub(crate) fn begin_term(&self) {
        if let Self::Raft { node, term, .. } = self {
            let old = std::mem::replace(
                &mut *term.write().unwrap_or_else(|p| p.into_inner()),
                Proposer::start(node.clone(), false),
            );
            old.close("this dispatcher stopped leading its group");
        }
    }

    /// Where a write goes now: this term's proposer, or (inside [`setup`],
    /// when this member does not lead) the leader.
    fn proposer(&self) -> Proposer {
        match self {
            Self::Local { .. } => unreachable!("a local ledger has no proposer"),
            Self::Raft { term, forward, .. } => {
                let p = current(term);
                if p.is_closed() && SETUP.try_with(|s| *s).unwrap_or(false) {
                    forward.clone()
                } else {
                    p
                }
            }
        }
    }

    /// Whether this term's proposer gave up (a write was not committed in
    /// time): the leader takes over again with a fresh one.
    pub(crate) fn term_failed(&self) -> bool {
        match self {
            Self::Local { .. } => false,
            Self::Raft { term, .. } => current(term).is_closed(),
        }
    }

    /// The term as leader ended: its waits fail with `why`.
    pub(crate) fn end_term(&self, why: &str) {
        if let Self::Raft { term, .. } = self {
            current(term).close(why);
        }
    }

    /// Queues a command (a group) or runs `local` on the store.
    fn put(
        &self,
        cmd: impl FnOnce() -> Command,
        local: impl FnOnce(&Store) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Local { store, .. } => local(store),
            Self::Raft { .. } => self.proposer().queue(cmd()),
        }
    }

    /// Waits until every write made before the call is durable (on a
    /// majority of the group).
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        match self {
            Self::Local { commit, .. } => commit.durable().await,
            Self::Raft { .. } => self.proposer().durable().await,
        }
    }

    /// Saves a task's record.
    pub(crate) fn save_task(&self, rec: &TaskRecord) -> Result<(), StoreError> {
        self.put(
            || tasks(vec![TaskOp::Record(rec.clone())]),
            |s| s.save_task(rec).map(drop),
        )
    }

    /// Saves several tasks' records (new leases) in one transaction.
    pub(crate) fn save_tasks<'a>(
        &self,
        recs: impl Iterator<Item = &'a TaskRecord>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Local { store, .. } => store.save_tasks(recs).map(drop),
            Self::Raft { .. } => self
                .proposer()
                .queue(tasks(recs.map(|r| TaskOp::Record(r.clone())).collect())),
        }
    }

    /// Saves a batch of new tasks, with the job they belong to if any, in
    /// one transaction (off the runtime's threads when local; one entry in
    /// a group); gives them back.
    pub(crate) async fn save_batch(
        &self,
        recs: Vec<TaskRecord>,
        job: Option<&JobRecord>,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        match self {
            Self::Local { store, .. } => {
                let store = store.clone();
                let job = job.cloned();
                tokio::task::spawn_blocking(move || {
                    store
                        .save_job_tasks(job.as_ref(), recs.iter())
                        .map(|_| recs)
                })
                .await
                .map_err(|e| {
                    StoreError::Io(std::io::Error::other(format!(
                        "storing the batch failed: {e}"
                    )))
                })?
            }
            Self::Raft { .. } => {
                self.proposer().queue(Command::Tasks {
                    job: job.map(|j| Box::new(j.clone())),
                    ops: recs.iter().map(|r| TaskOp::Record(r.clone())).collect(),
                    clear_dead: Vec::new(),
                })?;
                Ok(recs)
            }
        }
    }

    /// Records a task's result with its final record.
    pub(crate) fn record_result(
        &self,
        rec: &TaskRecord,
        outcome: &TaskOutcome,
    ) -> Result<(), StoreError> {
        self.put(
            || tasks(vec![TaskOp::Result(rec.clone(), outcome.clone())]),
            |s| s.record_result(rec, outcome).map(drop),
        )
    }

    /// Saves a task's record on the hot path (batched with others);
    /// whether it was written (not after a recorded result).
    pub(crate) async fn write_task(&self, rec: &TaskRecord) -> Result<bool, StoreError> {
        match self {
            Self::Local { writer, .. } => writer.save_task(rec).await,
            Self::Raft { .. } => {
                self.proposer()
                    .written(tasks(vec![TaskOp::Record(rec.clone())]))
                    .await
            }
        }
    }

    /// [`Ledger::write_task`], answered once it is durable, with one
    /// hand-off fewer than a write and a [`Ledger::durable`]: whether it was
    /// written, and whether it was made durable (an error there undoes
    /// nothing: the write may be on disk).
    pub(crate) async fn write_task_durable(&self, rec: &TaskRecord) -> Result<Durable, StoreError> {
        match self {
            Self::Local { writer, .. } => writer.save_task_durable(rec).await,
            Self::Raft { .. } => {
                let written = self.write_task(rec).await?;
                Ok((written, self.durable().await))
            }
        }
    }

    /// [`Ledger::write_result`], answered once it is durable; see
    /// [`Ledger::write_task_durable`].
    pub(crate) async fn write_result_durable(
        &self,
        rec: &TaskRecord,
        outcome: &TaskOutcome,
    ) -> Result<Durable, StoreError> {
        match self {
            Self::Local { writer, .. } => writer.record_result_durable(rec, outcome).await,
            Self::Raft { .. } => {
                let written = self.write_result(rec, outcome).await?;
                Ok((written, self.durable().await))
            }
        }
    }

    /// Records a result on the hot path; whether it was recorded (once).
    pub(crate) async fn write_result(
        &self,
        rec: &TaskRecord,
        outcome: &TaskOutcome,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Local { writer, .. } => writer.record_result(rec, outcome).await,
            Self::Raft { .. } => {
                self.proposer()
                    .written(tasks(vec![TaskOp::Result(rec.clone(), outcome.clone())]))
                    .await
            }
        }
    }

    /// Appends to the event log.
    pub(crate) fn append_event(&self, ev: &StoredEvent) -> Result<(), StoreError> {
        match self {
            Self::Local { store, .. } => store.append_event(ev),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                proposer.queue(Command::Events(vec![(store.next_seq()?, ev.clone())]))
            }
        }
    }

    /// Takes a task out of the dead-letter set; whether it was in it.
    pub(crate) fn clear_dead_letter(&self, id: &TaskId) -> Result<bool, StoreError> {
        match self {
            Self::Local { store, .. } => store.clear_dead_letter(id),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let was = store.is_dead_letter(id)?;
                if was {
                    proposer.queue(Command::Tasks {
                        job: None,
                        ops: Vec::new(),
                        clear_dead: vec![*id],
                    })?;
                }
                Ok(was)
            }
        }
    }

    /// Adds a cancelled run's report to its recorded cancel.
    pub(crate) fn amend_cancelled(&self, id: &TaskId, run: &TaskOutcome) -> Result<(), StoreError> {
        self.put(
            || Command::AmendCancelled {
                id: *id,
                run: Box::new(run.clone()),
            },
            |s| s.amend_cancelled(id, run).map(drop),
        )
    }

    /// Saves a schedule whole.
    pub(crate) fn save_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError> {
        self.put(
            || Command::PutSchedule(Box::new(rec.clone())),
            |s| s.save_schedule(rec),
        )
    }

    /// Removes a schedule; whether it existed.
    pub(crate) fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
        match self {
            Self::Local { store, .. } => store.remove_schedule(name),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let was = store.schedule(name)?.is_some();
                proposer.queue(Command::RemoveSchedule(name.to_owned()))?;
                Ok(was)
            }
        }
    }

    /// Stores a module; its digest. In a group the module's bytes travel
    /// in the log, so every member holds it.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<Sha256, StoreError> {
        match self {
            Self::Local { store, .. } => store.put_blob(bytes),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let sha = Sha256::of(bytes);
                if !store.has_module(&sha)? {
                    proposer.queue(Command::Blob(bytes.to_vec()))?;
                }
                Ok(sha)
            }
        }
    }
}

fn current(term: &std::sync::RwLock<Proposer>) -> Proposer {
    term.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn tasks(ops: Vec<TaskOp>) -> Command {
    Command::Tasks {
        job: None,
        ops,
        clear_dead: Vec::new(),
    }
}
