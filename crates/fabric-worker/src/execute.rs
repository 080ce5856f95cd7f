//! Running one verified attempt in the sandbox: guest events stream to the
//! dispatcher while it runs, and a cancel ends it.

use fabric_net::framed::FramedSend;
use fabric_proto::wire::Report;
use fabric_proto::{Manifest, TaskOutcome, TaskStatus};
use fabric_sandbox::{PreparedModule, WasmRuntime, WasmTask};
use tokio::sync::{mpsc, oneshot};

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
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let task = WasmTask {
        program_name: String::new(),
        args: m.args.clone(),
        env: m.env.clone(),
        stdin: input,
        limits: m.limits,
        scratch_dir: false,
    };
    let run = runtime.run(&module, task, move |e| {
        let _ = ev_tx.send(e);
    });
    tokio::pin!(run);
    let mut stream_ok = true;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            Some(e) = ev_rx.recv() => {
                if stream_ok && send.send(&Report::Event(e)).await.is_err() {
                    stream_ok = false;
                }
            }
            Ok(()) = &mut cancelled => {
                break TaskOutcome::ended(TaskStatus::Cancelled, "cancelled by the dispatcher");
            }
        }
    };
    while let Ok(e) = ev_rx.try_recv() {
        if stream_ok && send.send(&Report::Event(e)).await.is_err() {
            stream_ok = false;
        }
    }
    outcome
}
