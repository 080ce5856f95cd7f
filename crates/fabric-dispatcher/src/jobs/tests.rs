use fabric_proto::{BlobRef, EachItem, JobId, Priority, Sha256};

use super::*;

fn step(name: &str, kind: TaskKind) -> StepSpec {
    StepSpec {
        name: name.into(),
        kind,
        args: vec!["-c".into(), "{}".into()],
        env: Vec::new(),
        secrets: Vec::new(),
        input: None,
        limits: None,
        priority: Priority::Normal,
        retries: 1,
        after: Vec::new(),
        input_from: Vec::new(),
        files_from: Vec::new(),
        require: vec!["gpu".into()],
        each: Vec::new(),
    }
}

fn item(name: &str) -> EachItem {
    EachItem {
        name: name.into(),
        blob: BlobRef::of(name.as_bytes()),
    }
}

/// A map-reduce: `map` over three files, `reduce` reading their stdouts,
/// `link` a native step getting `compile`'s files.
fn record() -> JobRecord {
    let module = TaskKind::Wasm {
        module: Sha256::of(b"m"),
    };
    let mut map = step("map", module.clone());
    map.each = vec![item("a.txt"), item("b.txt"), item("c.txt")];
    let mut reduce = step("reduce", module);
    reduce.input_from = vec!["map".into()];
    let mut compile = step("compile", TaskKind::command("cc"));
    compile.each = vec![item("x.c"), item("y.c")];
    let mut link = step("link", TaskKind::command("cc"));
    link.files_from = vec!["compile".into()];
    link.after = vec!["reduce".into()];
    let spec = JobSpec {
        name: "j".into(),
        steps: vec![reduce, map, link, compile],
    };
    JobRecord {
        id: JobId::new(),
        tasks: new_ids(&spec),
        spec,
        submitted_ms: 0,
        rescues: 0,
    }
}

#[test]
fn every_task_comes_after_its_parents_and_is_wired_to_them() {
    let job = record();
    let order = job.spec.check().unwrap();
    let tasks = expand(&job, &order, None);
    assert_eq!(tasks.len(), 3 + 1 + 2 + 1);
    let pos: HashMap<TaskId, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    for (i, (_, spec)) in tasks.iter().enumerate() {
        for p in &spec.after {
            assert!(pos[p] < i, "a parent comes first");
        }
        assert_eq!(spec.trace.as_deref(), Some(job.id.to_string().as_str()));
        assert_eq!(spec.require, ["gpu"]);
    }
    let by_id: HashMap<TaskId, &TaskSpec> = tasks.iter().map(|(id, s)| (*id, s)).collect();
    let [reduce, map, link, compile] = &job.tasks[..] else {
        panic!()
    };
    // Fan-in: the three map tasks' stdouts, in fan-out order.
    let r = by_id[&reduce[0]];
    assert_eq!(r.fan_in, *map);
    assert_eq!(r.after, *map);
    // A wasm fan-out reads its file; a native one finds it in its dir,
    // and `{}` names it.
    assert_eq!(by_id[&map[1]].input_blob, Some(BlobRef::of(b"b.txt")));
    let y = by_id[&compile[1]];
    assert_eq!(y.args, ["-c", "y.c"]);
    let TaskKind::Command { files, .. } = &y.kind else {
        panic!()
    };
    assert_eq!(files[0].path, "y.c");
    let l = by_id[&link[0]];
    assert_eq!(l.files_from, *compile);
    let mut after = l.after.clone();
    after.sort();
    let mut want: Vec<TaskId> = compile.iter().chain(reduce).copied().collect();
    want.sort();
    assert_eq!(after, want);
}

#[test]
fn a_rescue_expands_only_the_tasks_asked_for() {
    let job = record();
    let order = job.spec.check().unwrap();
    let only: HashSet<TaskId> = [job.tasks[0][0], job.tasks[2][0]].into();
    let tasks = expand(&job, &order, Some(&only));
    let ids: Vec<TaskId> = tasks.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [job.tasks[0][0], job.tasks[2][0]]);
}

#[test]
fn a_job_is_running_until_every_task_is_final() {
    let (state, counts) = tally([Some(("succeeded", true)), Some(("queued", false))]);
    assert_eq!(state, JobState::Running);
    assert_eq!(counts["queued"], 1);
    let (state, _) = tally([Some(("succeeded", true)), Some(("succeeded", true))]);
    assert_eq!(state, JobState::Succeeded);
    let (state, counts) = tally([Some(("succeeded", true)), Some(("skipped", true)), None]);
    assert_eq!(state, JobState::Failed);
    assert_eq!(counts["lost"], 1);
}
