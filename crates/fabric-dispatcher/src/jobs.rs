//! Jobs as tasks: a checked [`JobSpec`] becomes one [`TaskSpec`] per step
//! item, wired to its parents' tasks, in an order where every task comes
//! after its parents; and a job's tasks' ends become its state. Pure: the
//! service stores and queues what this makes (`service/requests/jobs.rs`),
//! and the dependency machine (`service/deps.rs`) runs it.

use std::collections::{BTreeMap, HashMap, HashSet};

use fabric_proto::{
    JobRecord, JobSpec, JobState, StagedFile, StepSpec, TaskId, TaskKind, TaskSpec,
};

/// A fresh id for each item of each step, in the spec's order.
pub fn new_ids(spec: &JobSpec) -> Vec<Vec<TaskId>> {
    spec.steps
        .iter()
        .map(|s| (0..s.tasks()).map(|_| TaskId::new()).collect())
        .collect()
}

/// The specs of `job`'s tasks (those in `only`, or all), each under its id
/// in `job.tasks`, in `order` (parents first; from [`JobSpec::check`]).
pub fn expand(
    job: &JobRecord,
    order: &[usize],
    only: Option<&HashSet<TaskId>>,
) -> Vec<(TaskId, TaskSpec)> {
    let index: HashMap<&str, usize> = job
        .spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let tasks_of = |names: &[String]| -> Vec<TaskId> {
        names
            .iter()
            .flat_map(|n| job.tasks[index[n.as_str()]].iter().copied())
            .collect()
    };
    let trace = job.id.to_string();
    let mut out = Vec::new();
    for &i in order {
        let step = &job.spec.steps[i];
        let after: Vec<TaskId> = step
            .parents()
            .into_iter()
            .flat_map(|n| job.tasks[index[n]].iter().copied())
            .collect();
        let fan_in = tasks_of(&step.input_from);
        let files_from = tasks_of(&step.files_from);
        for (k, id) in job.tasks[i].iter().enumerate() {
            if only.is_some_and(|o| !o.contains(id)) {
                continue;
            }
            let mut spec = base(step, trace.clone());
            spec.after.clone_from(&after);
            spec.fan_in.clone_from(&fan_in);
            spec.files_from.clone_from(&files_from);
            if let Some(item) = step.each.get(k) {
                match &mut spec.kind {
                    // An empty file is an empty input (no blob holds it).
                    TaskKind::Wasm { .. } if item.blob.len == 0 => spec.input_blob = None,
                    TaskKind::Wasm { .. } => spec.input_blob = Some(item.blob),
                    TaskKind::Command { files, .. } => {
                        files.retain(|f| f.path != item.name);
                        files.push(StagedFile {
                            path: item.name.clone(),
                            blob: item.blob,
                            executable: false,
                        });
                        for a in &mut spec.args {
                            *a = a.replace("{}", &item.name);
                        }
                    }
                }
            }
            out.push((*id, spec));
        }
    }
    out
}

fn base(step: &StepSpec, trace: String) -> TaskSpec {
    TaskSpec {
        kind: step.kind.clone(),
        args: step.args.clone(),
        env: step.env.clone(),
        secrets: step.secrets.clone(),
        input: Vec::new(),
        input_blob: step.input,
        limits: step.limits.unwrap_or_default(),
        priority: step.priority,
        retries: step.retries,
        trace: Some(trace),
        require: step.require.clone(),
        after: Vec::new(),
        input_from: None,
        files_from: Vec::new(),
        fan_in: Vec::new(),
        not_before_ms: None,
    }
}

/// A job's state and its tasks' counts, from each task's word and whether
/// it is final (its status, or its state while it runs; `None`: the task
/// is not stored, counted `lost`, final).
pub fn tally<'a>(
    tasks: impl IntoIterator<Item = Option<(&'a str, bool)>>,
) -> (JobState, BTreeMap<String, u64>) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut running, mut all_good) = (false, true);
    for t in tasks {
        let (word, done) = t.unwrap_or(("lost", true));
        running |= !done;
        all_good &= word == "succeeded";
        *counts.entry(word.to_owned()).or_default() += 1;
    }
    let state = if running {
        JobState::Running
    } else if all_good {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    (state, counts)
}

#[cfg(test)]
mod tests;
