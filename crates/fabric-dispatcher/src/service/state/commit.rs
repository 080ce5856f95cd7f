//! The one commit path: scheduler changes are written, made durable,
//! announced to waiters and the feed, and placement is woken, in that
//! order, so nobody hears of a change that a crash could undo.

use fabric_proto::{TaskInfo, TaskOutcome, TaskStatus};
use fabric_store::{EventKind, StoreError};

use super::Shared;
use crate::scheduler::Change;

impl Shared {
    /// The commit path for scheduler changes: writes each changed record,
    /// then [`Shared::announce`]s the tasks that finished.
    pub(crate) async fn settle(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut finished = Vec::new();
        for change in changes {
            match change {
                Change::Lost(rec, why) => {
                    let detail = format!("attempt {} lost ({why}); requeued", rec.attempt);
                    self.event(Some(rec.id), EventKind::Lost, detail);
                    self.ledger.save_task(&rec)?;
                }
                Change::Refused(rec, why) => {
                    let detail = format!(
                        "attempt {} refused ({why}); offered again later",
                        rec.attempt
                    );
                    self.event(Some(rec.id), EventKind::Refused, detail);
                    self.ledger.save_task(&rec)?;
                }
                Change::Give(rec, message) => {
                    let outcome = TaskOutcome::ended(TaskStatus::Failed, message.clone());
                    self.event(Some(rec.id), EventKind::DeadLetter, message);
                    self.ledger.record_result(&rec, &outcome)?;
                    finished.push(rec.info(Some(outcome)));
                }
            }
        }
        self.announce(finished).await
    }

    /// Waits until everything written so far is durable, then tells the
    /// waiters of `finished` and wakes placement (slots may have freed).
    pub(crate) async fn announce(&self, finished: Vec<TaskInfo>) -> Result<(), StoreError> {
        self.announce_after(finished, None).await
    }

    /// [`Shared::announce`] for tasks whose writes the writer already made
    /// durable (`flushed`: how that flush went), so the first round waits
    /// for no flush of its own. (Events logged after that write are not
    /// waited for: they are a log, not what anyone is told.)
    pub(crate) async fn announce_flushed(
        &self,
        finished: Vec<TaskInfo>,
        flushed: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.announce_after(finished, Some(flushed)).await
    }

    async fn announce_after(
        &self,
        finished: Vec<TaskInfo>,
        mut flushed: Option<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        // Their ends release or skip the tasks held after them, and a
        // skip ends those held after it in turn, level by level.
        let mut batch = finished;
        loop {
            let durable = match flushed.take() {
                Some(done) => done,
                None => self.ledger.durable().await,
            };
            self.tell(&batch, durable)?;
            batch = self.after_ended(&batch).await?;
            if batch.is_empty() {
                return Ok(());
            }
        }
    }

    /// What the ends of `finished` do to the tasks held after them: those
    /// whose parents all succeeded are queued (written, not yet flushed: a
    /// restart before the flush finds them held and releases them again);
    /// those with a parent that did not are skipped, their results
    /// written; the skipped, to announce.
    async fn after_ended(&self, finished: &[TaskInfo]) -> Result<Vec<TaskInfo>, StoreError> {
        let now = self.now();
        let (released, skipped) = {
            let mut core = self.core();
            let (mut released, mut skipped) = (Vec::new(), Vec::new());
            for info in finished {
                let succeeded = info.status == Some(TaskStatus::Succeeded);
                let ended = core.deps.ended(&info.id, succeeded);
                for id in ended.release {
                    let mut failed = None;
                    released.extend(core.sched.release_waiting_with(&id, now, |rec| {
                        failed =
                            crate::service::requests::after::fill_input(&self.store, rec).err();
                    }));
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                let status = info.status.unwrap_or(TaskStatus::Cancelled);
                for id in ended.skip {
                    if let Some(rec) = core.sched.skip(&id, now) {
                        skipped.push((
                            rec,
                            crate::service::requests::after::skipped(info.id, status),
                        ));
                    }
                }
            }
            (released, skipped)
        };
        for rec in &released {
            self.ledger.write_task(rec).await?;
        }
        if !released.is_empty() {
            self.place.notify_one();
        }
        let mut ended = Vec::with_capacity(skipped.len());
        for (rec, outcome) in skipped {
            self.ledger.write_result(&rec, &outcome).await?;
            ended.push(rec.info(Some(outcome)));
        }
        Ok(ended)
    }

    /// Tells the waiters of `finished` that they ended, once `durable` says
    /// they are on disk (or that they are not), and wakes placement.
    fn tell(
        &self,
        finished: &[TaskInfo],
        durable: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if let Err(e) = durable {
            // Their waits end with the error rather than hang: the tasks
            // already left the scheduler.
            for info in finished {
                let why = format!(
                    "the dispatcher could not make task {}'s result durable ({e}); ask again with fabric status",
                    info.id
                );
                self.waiters.failed(&info.id, &why);
            }
            self.place.notify_one();
            return Err(e);
        }
        for info in finished {
            self.waiters.done(info);
            if let Some(status) = info.status {
                self.metrics.finished(status);
            }
            self.publish(info.id, "finished", info.status, || {
                match &info.worker_name {
                    Some(w) => format!("attempt {} on {w}", info.attempt),
                    None => format!("attempt {}", info.attempt),
                }
            });
        }
        self.place.notify_one();
        Ok(())
    }

    /// [`Shared::settle`] for loops that cannot return the error: logs it.
    pub(crate) async fn settle_or_log(&self, changes: Vec<Change>, what: &str) {
        if changes.is_empty() {
            return;
        }
        if let Err(e) = self.settle(changes).await {
            tracing::error!(error = %e, "cannot record {what}");
        }
    }
}
