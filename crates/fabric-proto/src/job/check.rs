//! A job's DAG checked before anything of it is stored: names, references,
//! bounds on what it expands to, and cycles (named), giving an order where
//! every step comes after its parents.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    JobSpec, JobSpecError, MAX_JOB_ARGS_BYTES, MAX_JOB_EDGES, MAX_JOB_ITEM_NAMES,
    MAX_JOB_STAGED_FILES, MAX_JOB_STEPS, MAX_JOB_TASKS, MAX_STEP_NAME, StepSpec,
};
use crate::TaskKind;

impl JobSpec {
    /// How many tasks the job makes.
    pub fn tasks(&self) -> usize {
        self.steps.iter().map(StepSpec::tasks).sum()
    }

    /// Checks names, references, bounds and cycles; returns the steps'
    /// indices in an order where every step comes after its parents.
    pub fn check(&self) -> Result<Vec<usize>, JobSpecError> {
        let invalid = |m: String| Err(JobSpecError::Invalid(m));
        if self.steps.is_empty() {
            return invalid("a job has at least one step".into());
        }
        if self.steps.len() > MAX_JOB_STEPS {
            return invalid(format!(
                "{} steps; a job has at most {MAX_JOB_STEPS}",
                self.steps.len()
            ));
        }
        if self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return invalid("the job's name: at most 200 bytes, no control characters".into());
        }
        let tasks = self.tasks();
        if tasks > MAX_JOB_TASKS {
            return invalid(format!(
                "the job makes {tasks} tasks; a job makes at most {MAX_JOB_TASKS}"
            ));
        }
        let mut index = BTreeMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            check_name(&s.name).map_err(JobSpecError::Invalid)?;
            if index.insert(s.name.as_str(), i).is_some() {
                return invalid(format!("two steps are named {:?}", s.name));
            }
        }
        self.check_weight(&index)?;
        for s in &self.steps {
            for (field, names) in [
                ("after", &s.after),
                ("input_from", &s.input_from),
                ("files_from", &s.files_from),
            ] {
                if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
                    return invalid(format!("step {:?}: {field} names a step twice", s.name));
                }
                if let Some(m) = names.iter().find(|n| !index.contains_key(n.as_str())) {
                    return Err(JobSpecError::UnknownStep {
                        step: s.name.clone(),
                        field,
                        missing: m.clone(),
                    });
                }
            }
            self.check_step(s, &index)?;
        }
        self.order(&index)
    }

    /// What the job expands to, in edges, args and staged files, within
    /// bounds (so a small request cannot make a large expansion).
    fn check_weight(&self, index: &BTreeMap<&str, usize>) -> Result<(), JobSpecError> {
        let (mut edges, mut bytes, mut files, mut names) = (0usize, 0usize, 0usize, 0usize);
        for s in &self.steps {
            let parents: usize = s
                .parents()
                .iter()
                .filter_map(|p| index.get(p))
                .map(|&i| self.steps[i].tasks())
                .sum();
            edges = edges.saturating_add(s.tasks().saturating_mul(parents));
            let args = s.args.iter().map(String::len).sum::<usize>()
                + s.env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            bytes = bytes.saturating_add(s.tasks().saturating_mul(args));
            if let TaskKind::Command { files: f, .. } = &s.kind {
                files = files.saturating_add(s.tasks().saturating_mul(f.len()));
            }
            names += s.each.iter().map(|i| i.name.len()).sum::<usize>();
        }
        let over = |what: String| Err(JobSpecError::Invalid(what));
        if edges > MAX_JOB_EDGES {
            return over(format!(
                "the job makes {edges} dependency edges (each task of a step waits on every task of the steps it runs after); at most {MAX_JOB_EDGES}"
            ));
        }
        if bytes > MAX_JOB_ARGS_BYTES {
            return over(format!(
                "the job's tasks carry {bytes} bytes of args and env in all (each task its step's); at most {MAX_JOB_ARGS_BYTES}"
            ));
        }
        if names > MAX_JOB_ITEM_NAMES {
            return over(format!(
                "the names of the job's each items add up to {names} bytes; at most {MAX_JOB_ITEM_NAMES}"
            ));
        }
        if files > MAX_JOB_STAGED_FILES {
            return over(format!(
                "the job's tasks stage {files} files in all (each task its step's files); at most {MAX_JOB_STAGED_FILES}"
            ));
        }
        Ok(())
    }

    fn check_step(&self, s: &StepSpec, index: &BTreeMap<&str, usize>) -> Result<(), JobSpecError> {
        let invalid = |m: String| Err(JobSpecError::Invalid(format!("step {:?}: {m}", s.name)));
        let native = matches!(s.kind, TaskKind::Command { .. });
        if !s.input_from.is_empty() && (s.input.is_some() || (!s.each.is_empty() && !native)) {
            return invalid(
                "input_from gives its stdin; it cannot also have an input or a wasm each".into(),
            );
        }
        if s.input.is_some() && !s.each.is_empty() && !native {
            return invalid("each gives a wasm step its input; drop input".into());
        }
        if !s.files_from.is_empty() && !native {
            return invalid(
                "files_from: only a native command has a dir to stage files into".into(),
            );
        }
        if let Some(p) = s
            .files_from
            .iter()
            .find(|p| !matches!(self.steps[index[p.as_str()]].kind, TaskKind::Command { .. }))
        {
            return invalid(format!(
                "files_from {p:?}: that step runs a module, which has no output files"
            ));
        }
        for item in &s.each {
            crate::check_relative_path(&item.name)
                .map_err(|e| JobSpecError::Invalid(format!("step {:?}: each: {e}", s.name)))?;
        }
        crate::check_require(&s.require)
            .map_err(|e| JobSpecError::Invalid(format!("step {:?}: require: {e}", s.name)))
    }

    /// The parents-first order of a job that was checked when it was
    /// stored (its bounds are not checked again: they may have changed).
    pub fn stored_order(&self) -> Result<Vec<usize>, JobSpecError> {
        let index = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect::<BTreeMap<_, _>>();
        if let Some(s) = self
            .steps
            .iter()
            .find(|s| s.parents().iter().any(|p| !index.contains_key(p)))
        {
            return Err(JobSpecError::Invalid(format!(
                "stored step {:?} names a step the job does not have",
                s.name
            )));
        }
        self.order(&index)
    }

    /// Kahn's order; on a cycle, names one.
    fn order(&self, index: &BTreeMap<&str, usize>) -> Result<Vec<usize>, JobSpecError> {
        let n = self.steps.len();
        let mut pending: Vec<usize> = self.steps.iter().map(|s| s.parents().len()).collect();
        let mut children = vec![Vec::new(); n];
        for (i, s) in self.steps.iter().enumerate() {
            for p in s.parents() {
                children[index[p]].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &c in &children[i] {
                pending[c] -= 1;
                if pending[c] == 0 {
                    ready.push(c);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        Err(JobSpecError::Cycle(self.cycle(&pending, index)))
    }

    /// One cycle among the steps left with parents pending: walk parents
    /// (each such step has one that is also pending) until a step repeats.
    fn cycle(&self, pending: &[usize], index: &BTreeMap<&str, usize>) -> Vec<String> {
        let Some(start) = (0..pending.len()).find(|&i| pending[i] > 0) else {
            return Vec::new();
        };
        let mut path = vec![start];
        let mut at = start;
        loop {
            let Some(next) = self.steps[at]
                .parents()
                .into_iter()
                .map(|p| index[p])
                .find(|&p| pending[p] > 0)
            else {
                return Vec::new();
            };
            if let Some(pos) = path.iter().position(|&p| p == next) {
                // `path` walks from children to parents: say it the other
                // way, parent first, and close the circle.
                let mut names: Vec<String> = path[pos..]
                    .iter()
                    .rev()
                    .map(|&i| self.steps[i].name.clone())
                    .collect();
                names.push(names[0].clone());
                return names;
            }
            path.push(next);
            at = next;
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_STEP_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "step name {name:?}: 1 to {MAX_STEP_NAME} of A-Z a-z 0-9 _ -"
        ))
    }
}
