//! The demo's native job, when this host can sandbox one: the demo's
//! workers allow `sh`, and a command says where it ran.

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::{TaskKind, TaskSpec, TaskStatus};
use fabric_worker::NativeConfig;

use crate::output::{DemoJob, Output};

/// What the native job runs, through `sh`.
const SCRIPT: &str = "echo \"native: $(uname -s) as uid $(id -u) on $(hostname), in $(pwd)\"";

/// Native commands for the demo's workers and the layers they will have,
/// when this host has the namespaces a sandbox needs; the reason otherwise.
pub(super) fn config() -> Result<(NativeConfig, String), String> {
    let layers = fabric_native::Layers::detect();
    if !layers.namespaces {
        return Err(format!(
            "this host cannot sandbox them ({})",
            layers.describe()
        ));
    }
    let path = std::env::var("PATH").ok();
    let allow = fabric_native::AllowList::resolve(&["sh".into()], path.as_deref())
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the fabric binary: {e}"))?;
    let native = NativeConfig {
        allow,
        helper: vec![exe.into_os_string(), fabric_native::HELPER_COMMAND.into()],
        network: false,
        exec_in_work: false,
        max_task_disk: NativeConfig::DEFAULT_MAX_TASK_DISK,
    };
    Ok((native, layers.describe()))
}

/// Runs the native job, which gets `layers`; true when it succeeded.
pub(super) async fn run(client: &Client, output: Output, layers: &str) -> anyhow::Result<bool> {
    let spec = TaskSpec {
        args: vec!["-c".into(), SCRIPT.into()],
        ..TaskSpec::new(TaskKind::command("sh"))
    };
    let id = client.submit(spec).await?;
    let info = client.wait(id, |_| {}).await?;
    let outcome = info
        .outcome
        .as_ref()
        .context("finished task without an outcome")?;
    let ok = outcome.status == TaskStatus::Succeeded;
    let job = DemoJob {
        name: "native",
        what: "sh in the process sandbox (allow-listed)",
        expected: TaskStatus::Succeeded,
        ok,
    };
    output.demo_job(&job, &info, outcome);
    output.demo_native_layers(layers);
    Ok(ok)
}
