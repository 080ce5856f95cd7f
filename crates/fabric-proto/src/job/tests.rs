use super::*;

fn step(name: &str, after: &[&str]) -> StepSpec {
    StepSpec {
        after: after.iter().map(|s| (*s).to_owned()).collect(),
        ..StepSpec::new(name, TaskKind::command("true"))
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

#[test]
fn a_small_job_cannot_expand_into_a_large_one() {
    let item = EachItem {
        name: "f".into(),
        blob: BlobRef::of(b""),
    };
    // Two fan-outs of 1,000, the second after the first: 10^6 edges.
    let mut a = step("a", &[]);
    a.each = vec![item.clone(); 1_000];
    let mut b = step("b", &["a"]);
    b.each = vec![item.clone(); 1_000];
    let err = job(vec![a.clone(), b]).check().unwrap_err().to_string();
    assert!(err.contains("dependency edges"), "{err}");
    // A fan-in of 1,000 is 1,000 edges: fine.
    assert!(job(vec![a.clone(), step("reduce", &["a"])]).check().is_ok());
    // 1,000 tasks each carrying 64 KiB of args: 64 MiB.
    let mut big = a.clone();
    big.args = vec!["x".repeat(64 << 10)];
    let err = job(vec![big]).check().unwrap_err().to_string();
    assert!(err.contains("bytes of args and env"), "{err}");
    let mut staged = a;
    staged.kind = TaskKind::Command {
        program: "cc".into(),
        files: vec![
            crate::StagedFile {
                path: "x".into(),
                blob: BlobRef::of(b""),
                executable: false,
            };
            101
        ],
        outputs: Vec::new(),
    };
    let err = job(vec![staged]).check().unwrap_err().to_string();
    assert!(err.contains("files in all"), "{err}");
}

#[test]
fn a_step_named_twice_in_a_list_and_a_control_character_are_refused() {
    let mut j = job(vec![step("a", &[]), step("b", &[])]);
    j.steps[1].input_from = vec!["a".into(), "a".into()];
    let err = j.check().unwrap_err().to_string();
    assert!(err.contains("input_from names a step twice"), "{err}");
    j.steps[1].input_from = vec!["a".into()];
    assert!(j.check().is_ok());
    j.name = "bad\u{1b}[2Jname".into();
    assert!(j.check().unwrap_err().to_string().contains("control"));
    // A stored job keeps an order whatever the bounds are now.
    j.name = "fine".into();
    assert_eq!(j.stored_order().unwrap(), j.check().unwrap());
}
