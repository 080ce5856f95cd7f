//! The demo's job: a map-reduce word count over its text, split into
//! parts (one `count` task per part, then a `merge` step reading their
//! stdouts), checked against wordfreq over the whole text.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::{EachItem, JobSpec, JobState, StepSpec, TaskKind, TaskSpec};

use super::{TEXT, guests, spec};
use crate::output::{DemoMapReduce, Output};

/// How long the job may take.
const WITHIN: Duration = Duration::from_secs(60);

fn step(name: &str, module: TaskKind, args: &[&str]) -> StepSpec {
    StepSpec {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..StepSpec::new(name, module)
    }
}

/// Runs the job; true when it succeeded with the whole text's counts.
pub(super) async fn run(client: &Client, output: Output) -> anyhow::Result<bool> {
    let module = client.upload_module(guests::WORDFREQ).await?;
    let kind = TaskKind::Wasm { module };
    let mut count = step("count", kind.clone(), &["--top", "all"]);
    for (i, part) in TEXT.split_inclusive(". ").enumerate() {
        count.each.push(EachItem {
            name: format!("part-{}.txt", i + 1),
            blob: client.upload_input(part.as_bytes()).await?,
        });
    }
    let mut merge = step("merge", kind, &["--merge", "--top", "3"]);
    merge.input_from = vec!["count".into()];
    let parts = count.each.len();
    let started = Instant::now();
    let job = client
        .submit_job(JobSpec {
            name: "demo-wordcount".into(),
            steps: vec![count, merge],
        })
        .await?;
    let whole = client
        .submit(TaskSpec {
            args: vec!["--top".into(), "3".into()],
            ..spec(module, &[], TEXT.as_bytes(), None)
        })
        .await?;
    let view = loop {
        let view = client.job(job.id).await?;
        if view.state != JobState::Running {
            break view;
        }
        anyhow::ensure!(
            started.elapsed() < WITHIN,
            "the demo job did not finish within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed();
    let merged = client
        .result(job.tasks[1][0])
        .await?
        .outcome
        .context("the merge task has no result")?;
    let whole = client.wait(whole, |_| {}).await?;
    let same = whole.outcome.is_some_and(|o| o.stdout == merged.stdout);
    let ok = view.state == JobState::Succeeded && same;
    output.demo_mapreduce(&DemoMapReduce {
        job: view.id.to_string(),
        parts,
        ok,
        took,
        top: String::from_utf8_lossy(&merged.stdout).trim().to_owned(),
    });
    Ok(ok)
}
