//! Running one verified attempt in the sandbox: guest events stream to the
//! dispatcher while it runs, and a cancel ends it.
//!
//! Between the guest and the stream sits a bounded [`EventQueue`]: the
//! sandbox's callback never blocks and never grows memory past the queue's
//! bound, and a dispatcher that reads slowly loses intermediate progress
//! (and, past the bound, log lines), never the result.

use std::sync::{Arc, Mutex, PoisonError};

use fabric_net::framed::FramedSend;
use fabric_proto::wire::Report;
use fabric_proto::{EventQueue, GuestEvent, Manifest, TaskOutcome, TaskStatus};
use fabric_sandbox::{PreparedModule, WasmRuntime, WasmTask};
use tokio::sync::{Notify, oneshot};

/// Log lines of one attempt buffered for the dispatcher at most.
pub(crate) const MAX_QUEUED_LOGS: usize = 256;

/// The queue shared by the guest's callback and the sender.
#[derive(Default)]
struct Mailbox {
    inner: Mutex<(Option<EventQueue>, bool)>,
    wake: Notify,
}

impl Mailbox {
    fn push(&self, event: GuestEvent) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .0
            .get_or_insert_with(|| EventQueue::new(MAX_QUEUED_LOGS))
            .push(event);
        drop(inner);
        self.wake.notify_one();
    }

    /// The next event, or `Err(())` once closed and empty.
    fn pop(&self) -> Result<Option<GuestEvent>, ()> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match inner.0.as_mut().and_then(EventQueue::pop) {
            Some(e) => Ok(Some(e)),
            None if inner.1 => Err(()),
            None => Ok(None),
        }
    }

    fn close(&self) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.wake.notify_one();
    }
}

/// Runs the attempt; returns how it ended. Guest events go out on `send`
/// as they come; once the stream broke they are dropped (the result still
/// matters and is sent by the caller).
pub(crate) async fn execute(
    runtime: &WasmRuntime,
    m: &Manifest,
    module: PreparedModule,
    input: Vec<u8>,
    mut cancelled: oneshot::Receiver<()>,
    send: &mut FramedSend,
) -> TaskOutcome {
    let task = WasmTask {
        program_name: String::new(),
        args: m.args.clone(),
        // Secrets go in as env, in memory only.
        env: m
            .env
            .iter()
            .cloned()
            .chain(
                m.secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_owned())),
            )
            .collect(),
        stdin: input,
        limits: m.limits,
        scratch_dir: false,
    };
    streaming(send, |sink| async move {
        let run = runtime.run(&module, task, move |e| sink.push(e));
        tokio::select! {
            outcome = run => outcome,
            Ok(()) = &mut cancelled => {
                TaskOutcome::ended(TaskStatus::Cancelled, "cancelled by the dispatcher")
            }
        }
    })
    .await
}

/// Where a run puts its events: a bounded queue the sender drains.
#[derive(Clone)]
pub(crate) struct Sink(Arc<Mailbox>);

impl Sink {
    /// Queues an event; never blocks.
    pub(crate) fn push(&self, event: GuestEvent) {
        self.0.push(event);
    }
}

/// Runs `run` with a [`Sink`] while a sender beside it streams the events
/// to the dispatcher, not inside the run's select, so a slow stream never
/// stalls the run or its deadline and a frame is never cut in half; the
/// sender ends once the run ended and the queue is empty.
pub(crate) async fn streaming<F>(send: &mut FramedSend, run: impl FnOnce(Sink) -> F) -> TaskOutcome
where
    F: Future<Output = TaskOutcome>,
{
    let mailbox = Arc::new(Mailbox::default());
    let running = {
        let fut = run(Sink(mailbox.clone()));
        let mailbox = mailbox.clone();
        async move {
            let outcome = fut.await;
            mailbox.close();
            outcome
        }
    };
    let sending = async {
        loop {
            match mailbox.pop() {
                Ok(Some(e)) => {
                    if send.send(&Report::Event(e)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => mailbox.wake.notified().await,
                Err(()) => return,
            }
        }
    };
    let (outcome, ()) = tokio::join!(running, sending);
    outcome
}
