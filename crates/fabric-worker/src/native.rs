//! A verified native attempt: the allow-listed program through the
//! sandbox helper, its output streamed as it comes.

use std::path::PathBuf;

use fabric_native::{NativeRunner, NativeTask};
use fabric_net::framed::FramedSend;
use fabric_proto::{Manifest, TaskOutcome};
use tokio::sync::oneshot;

use crate::execute::streaming;

/// Runs `program` (resolved from the allow-list) as the manifest says.
pub(crate) async fn run(
    runner: &NativeRunner,
    m: &Manifest,
    program: PathBuf,
    input: Vec<u8>,
    cancelled: oneshot::Receiver<()>,
    send: &mut FramedSend,
) -> TaskOutcome {
    let task = NativeTask {
        name: format!("{}-{}", m.task_id, m.attempt),
        program,
        args: m.args.clone(),
        env: m.env.clone(),
        stdin: input,
        limits: m.limits,
    };
    streaming(send, |sink| async move {
        runner.run(task, cancelled, move |e| sink.push(e)).await
    })
    .await
}
