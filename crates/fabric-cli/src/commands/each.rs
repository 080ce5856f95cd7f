//! `--each GLOB`: one task per matched file, all submitted in one request
//! (`submit_many`) under a job id — their shared correlation id, so
//! `fabric tasks --trace JOB` lists them — and with `--wait` followed
//! together: one progress bar, then a summary by status.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fabric_client::Client;
use fabric_proto::TaskSpec;
use fabric_proto::wire::MAX_SUBMIT_BATCH;

use crate::output::Output;
use crate::usage;

/// The regular files `pattern` matches, sorted; at least one, and no more
/// than one request carries.
pub(crate) fn files(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let paths =
        glob::glob(pattern).map_err(|e| usage(format!("--each {pattern:?} is not a glob: {e}")))?;
    let mut found = Vec::new();
    for p in paths {
        let p = p.map_err(|e| usage(format!("--each {pattern}: {e}")))?;
        if p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(usage(format!("--each {pattern:?} matches no file")));
    }
    if found.len() > MAX_SUBMIT_BATCH {
        return Err(usage(format!(
            "--each {pattern:?} matches {} files; at most {MAX_SUBMIT_BATCH} go in one request",
            found.len()
        )));
    }
    Ok(found)
}

/// A new job id: the correlation id every task of the job carries.
pub(crate) fn job_id() -> String {
    format!("job-{}", fabric_proto::TaskId::new())
}

/// Submits `specs` in one request; prints the job and its task ids, and
/// with `wait` follows them all to a summary. The exit code: 0 when every
/// task succeeded (or was only queued), 1 otherwise.
pub(crate) async fn submit_all(
    client: &Client,
    job: &str,
    specs: Vec<TaskSpec>,
    output: Output,
    quiet: bool,
    wait: bool,
) -> anyhow::Result<i32> {
    let queued = client.submit_many(specs).await?;
    let ids: Vec<_> = queued.iter().map(|q| q.id).collect();
    output.job_submitted(job, &ids, quiet);
    if !wait {
        return Ok(0);
    }
    let bar = crate::output::JobProgress::new(output, quiet, ids.len() as u64);
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for id in &ids {
        let done = tokio::select! {
            done = client.wait(*id, |_| {}) => done?,
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                crate::output::note(&format!(
                    "the job's tasks keep running: fabric tasks --trace {job}"
                ));
                return Ok(130);
            }
        };
        *by_status.entry(done.status_word().to_owned()).or_default() += 1;
        bar.inc();
    }
    bar.finish();
    output.job_summary(job, &by_status, quiet);
    let all_good = by_status.keys().all(|s| s == "succeeded");
    Ok(if all_good { 0 } else { 1 })
}
