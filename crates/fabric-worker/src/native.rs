//! A verified native attempt: the allow-listed program through the
//! sandbox helper, its output streamed as it comes.

use std::path::PathBuf;

use fabric_native::{NativeRunner, NativeTask};
use fabric_net::framed::FramedSend;
use fabric_proto::{Manifest, TaskOutcome};
use tokio::sync::oneshot;

use crate::execute::streaming;

/// What one native attempt runs with, beside the manifest.
pub(crate) struct Job {
    /// The program, resolved from the allow-list.
    pub program: PathBuf,
    /// Its stdin.
    pub input: Vec<u8>,
    /// Its staged files, fetched.
    pub files: Vec<fabric_native::Staged>,
    /// Its output globs.
    pub outputs: Vec<String>,
}

/// Runs the job as the manifest says.
pub(crate) async fn run(
    runner: &NativeRunner,
    m: &Manifest,
    job: Job,
    cancelled: oneshot::Receiver<()>,
    send: &mut FramedSend,
) -> TaskOutcome {
    let task = NativeTask {
        name: format!("{}-{}", m.task_id, m.attempt),
        program: job.program,
        args: m.args.clone(),
        env: m.env.clone(),
        secrets: m.secrets.clone(),
        stdin: job.input,
        limits: m.limits,
        files: job.files,
        outputs: job.outputs,
    };
    streaming(send, |sink| async move {
        runner.run(task, cancelled, move |e| sink.push(e)).await
    })
    .await
}
