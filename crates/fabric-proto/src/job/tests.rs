use super::*;

fn step(name: &str, after: &[&str]) -> StepSpec {
    StepSpec {
        name: name.into(),
        kind: TaskKind::command("true"),
        args: Vec::new(),
        env: Vec::new(),
        input: None,
        limits: None,
        priority: Priority::Normal,
        retries: 0,
        after: after.iter().map(|s| (*s).to_owned()).collect(),
        input_from: Vec::new(),
        files_from: Vec::new(),
        require: Vec::new(),
        each: Vec::new(),
    }
}

fn job(steps: Vec<StepSpec>) -> JobSpec {
    JobSpec {
        name: "j".into(),
        steps,
    }
}

#[test]
fn orders_parents_first() {
    let j = job(vec![
        step("link", &["a", "b"]),
        step("a", &[]),
        step("b", &["a"]),
    ]);
    let order = j.check().unwrap();
    let names: Vec<&str> = order.iter().map(|&i| j.steps[i].name.as_str()).collect();
    assert_eq!(names, ["a", "b", "link"]);
}

#[test]
fn a_cycle_is_refused_naming_its_steps() {
    let j = job(vec![
        step("start", &[]),
        step("x", &["start", "z"]),
        step("y", &["x"]),
        step("z", &["y"]),
    ]);
    let JobSpecError::Cycle(names) = j.check().unwrap_err() else {
        panic!("not a cycle")
    };
    // A circle of x, y, z, closed by its first step.
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names.first(), names.last());
    for s in ["x", "y", "z"] {
        assert!(names.contains(&s.to_owned()), "{names:?}");
    }
    assert!(!names.contains(&"start".to_owned()));
    let mut self_loop = job(vec![step("a", &["a"])]);
    assert_eq!(
        self_loop.check().unwrap_err().to_string(),
        "the steps form a cycle: a -> a"
    );
    self_loop.steps[0].after.clear();
    assert!(self_loop.check().is_ok());
}

#[test]
fn unknown_steps_and_bad_names_are_refused() {
    let mut j = job(vec![step("a", &[]), step("b", &[])]);
    j.steps[1].input_from = vec!["nope".into()];
    assert_eq!(
        j.check().unwrap_err().to_string(),
        "step \"b\" names input_from \"nope\", which is not a step of this job"
    );
    let j = job(vec![step("a", &[]), step("a", &[])]);
    assert!(j.check().unwrap_err().to_string().contains("two steps"));
    let j = job(vec![step("a b", &[])]);
    assert!(j.check().is_err());
    assert!(job(Vec::new()).check().is_err());
}

#[test]
fn the_task_bound_counts_fan_outs() {
    let mut s = step("wide", &[]);
    let item = EachItem {
        name: "f".into(),
        blob: BlobRef::of(b""),
    };
    s.each = vec![item; MAX_JOB_TASKS + 1];
    let err = job(vec![s]).check().unwrap_err().to_string();
    assert!(err.contains("at most 10000"), "{err}");
}

#[test]
fn job_ids_print_and_parse_back() {
    let id = JobId::new();
    let text = id.to_string();
    assert!(text.starts_with("job-"));
    assert_eq!(text.parse::<JobId>().unwrap(), id);
    assert!(
        "0190c7a2-3b4c-7d5e-8f60-123456789abc"
            .parse::<JobId>()
            .is_err()
    );
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{text}\""));
}
