//! A model-based property test of the waiting edges: random DAGs, random
//! outcomes, restarts at random points (the index rebuilt from what is
//! still held, as `restore` does), then a rescue (`fabric job retry`: the
//! tasks that did not succeed admitted again under new ids, after the kept
//! succeeded ones). For every run: every task ends; none runs before all
//! its parents succeeded; a task is skipped exactly when a parent did not
//! succeed; none runs twice; and no task that succeeded runs again after
//! the rescue.

use std::collections::HashMap;

use fabric_proto::TaskId;
use proptest::prelude::*;

use super::Deps;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Succeeded,
    Failed,
    Skipped,
}

struct Run {
    ids: Vec<TaskId>,
    parents: Vec<Vec<usize>>,
    ended: HashMap<usize, End>,
    held: Vec<usize>,
    ready: Vec<usize>,
    ran: Vec<usize>,
    deps: Deps,
}

impl Run {
    fn index(&self, id: &TaskId) -> usize {
        self.ids
            .iter()
            .position(|i| i == id)
            .expect("a task of this run")
    }

    /// Admission: parents looked at now (as `after::classify` does).
    fn admit(&mut self, t: usize) {
        let (mut unfinished, mut failed) = (Vec::new(), false);
        for &p in &self.parents[t] {
            match self.ended.get(&p) {
                None => unfinished.push(self.ids[p]),
                Some(End::Succeeded) => {}
                Some(_) => failed = true,
            }
        }
        if failed {
            self.end(t, End::Skipped);
        } else if unfinished.is_empty() {
            self.ready.push(t);
        } else {
            self.deps.wait(self.ids[t], &unfinished);
            self.held.push(t);
        }
    }

    /// A task ends: its children released or skipped, skips cascading
    /// (as `Shared::after_ended` does, level by level).
    fn end(&mut self, t: usize, how: End) {
        let mut batch = vec![(t, how)];
        while let Some((t, how)) = batch.pop() {
            assert!(self.ended.insert(t, how).is_none(), "task {t} ended twice");
            self.held.retain(|h| *h != t);
            let ended = self.deps.ended(&self.ids[t], how == End::Succeeded);
            for id in ended.release {
                let c = self.index(&id);
                self.held.retain(|h| *h != c);
                self.ready.push(c);
            }
            for id in ended.skip {
                batch.push((self.index(&id), End::Skipped));
            }
        }
    }

    /// A restart: the index rebuilt from the held tasks (as `restore`).
    fn restart(&mut self) {
        self.deps = Deps::default();
        loop {
            let mut changed = false;
            for t in self.held.clone() {
                if self.ended.contains_key(&t) || !self.held.contains(&t) {
                    continue;
                }
                let failed = self.parents[t]
                    .iter()
                    .any(|p| matches!(self.ended.get(p), Some(End::Failed | End::Skipped)));
                let unfinished: Vec<_> = self.parents[t]
                    .iter()
                    .filter(|p| !self.ended.contains_key(p))
                    .map(|p| self.ids[*p])
                    .collect();
                if failed {
                    self.held.retain(|h| *h != t);
                    self.ended.insert(t, End::Skipped);
                    changed = true;
                } else if unfinished.is_empty() {
                    self.held.retain(|h| *h != t);
                    self.ready.push(t);
                } else {
                    self.deps.wait(self.ids[t], &unfinished);
                }
            }
            if !changed {
                break;
            }
        }
    }
}

fn dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<bool>, Vec<u8>)> {
    (2usize..24).prop_flat_map(|n| {
        let parents = (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(3)))
            .collect::<Vec<_>>();
        (
            parents,
            proptest::collection::vec(proptest::bool::weighted(0.75), n),
            proptest::collection::vec(any::<u8>(), n * 2),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_task_ends_after_its_parents_and_skips_follow_failures(
        (parents, succeeds, choices) in dag()
    ) {
        let n = parents.len();
        // Task 0 has no parents (its range is empty); others point back.
        let parents: Vec<Vec<usize>> = parents
            .into_iter()
            .enumerate()
            .map(|(i, mut ps)| { ps.retain(|p| *p < i); ps.sort(); ps.dedup(); ps })
            .collect();
        let mut run = Run {
            ids: (0..n).map(|_| TaskId::new()).collect(),
            parents: parents.clone(),
            ended: HashMap::new(),
            held: Vec::new(),
            ready: Vec::new(),
            ran: Vec::new(),
            deps: Deps::default(),
        };
        let mut choice = choices.iter().copied().cycle();
        drive(&mut run, &mut choice, &succeeds, (0..n).collect())?;
        // Every task ended; skipped exactly when a parent did not succeed.
        for (t, ps) in parents.iter().enumerate() {
            let end = run.ended.get(&t).copied();
            prop_assert!(end.is_some(), "task {} never ended", t);
            let a_parent_failed = ps
                .iter()
                .any(|p| run.ended.get(p) != Some(&End::Succeeded));
            prop_assert_eq!(end == Some(End::Skipped), a_parent_failed, "task {}", t);
        }
        prop_assert_eq!(run.deps.held(), 0);

        // The rescue: what did not succeed, under new ids, admitted in
        // order after the succeeded tasks (kept, with their ends).
        let again: Vec<usize> = (0..n).filter(|t| run.ended.get(t) != Some(&End::Succeeded)).collect();
        let kept: HashMap<usize, End> = run
            .ended
            .iter()
            .filter(|(_, e)| **e == End::Succeeded)
            .map(|(t, e)| (*t, *e))
            .collect();
        let mut ids = run.ids.clone();
        for t in &again {
            ids[*t] = TaskId::new();
        }
        let mut rescue = Run {
            ids,
            parents: parents.clone(),
            ended: kept.clone(),
            held: Vec::new(),
            ready: Vec::new(),
            ran: Vec::new(),
            deps: Deps::default(),
        };
        // The second time round, more succeed.
        let second: Vec<bool> = succeeds.iter().zip(&choices).map(|(s, c)| *s || c.is_multiple_of(2)).collect();
        drive(&mut rescue, &mut choice, &second, again.clone())?;
        for t in &rescue.ran {
            prop_assert!(!kept.contains_key(t), "task {} succeeded, and ran again after the rescue", t);
        }
        for t in &again {
            prop_assert!(rescue.ended.contains_key(t), "rescued task {} never ended", t);
        }
        prop_assert_eq!(rescue.deps.held(), 0);
    }
}

/// Admits `order` (parents first) and runs what is ready, restarting now
/// and then, until every admitted task ended.
fn drive(
    run: &mut Run,
    choice: &mut impl Iterator<Item = u8>,
    succeeds: &[bool],
    order: Vec<usize>,
) -> Result<(), TestCaseError> {
    let mut pending = order.into_iter().peekable();
    loop {
        let c = choice.next().unwrap_or(0);
        if pending.peek().is_some() && (c.is_multiple_of(3) || run.ready.is_empty()) {
            if let Some(t) = pending.next() {
                run.admit(t);
            }
        } else if c % 11 == 1 {
            run.restart();
        } else if !run.ready.is_empty() {
            let t = run.ready.remove(usize::from(c) % run.ready.len());
            // It runs only once every parent succeeded.
            for p in &run.parents[t] {
                prop_assert_eq!(
                    run.ended.get(p),
                    Some(&End::Succeeded),
                    "task {} ran before {}",
                    t,
                    p
                );
            }
            prop_assert!(!run.ran.contains(&t), "task {} ran twice", t);
            run.ran.push(t);
            run.end(
                t,
                if succeeds[t] {
                    End::Succeeded
                } else {
                    End::Failed
                },
            );
        } else if pending.peek().is_none() {
            return Ok(());
        }
    }
}
