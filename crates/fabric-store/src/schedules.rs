//! Schedules: a [`ScheduleRecord`] per schedule in the `schedules` tree,
//! keyed by its name. Callers flush (group commit) before they acknowledge
//! an add, a pause, a resume or a removal.

use fabric_proto::ScheduleRecord;

use crate::{Result, Store};

impl Store {
    /// Writes a schedule (new, or its next time and runs after a firing).
    pub fn save_schedule(&self, rec: &ScheduleRecord) -> Result<()> {
        let _gate = self.gate();
        self.faults.check()?;
        self.schedules
            .insert(rec.spec.name.as_bytes(), self.enc("schedule", rec)?)?;
        Ok(())
    }

    /// A schedule by name.
    pub fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>> {
        self.schedules
            .get(name.as_bytes())?
            .map(|v| self.dec("schedule", &v))
            .transpose()
    }

    /// Every schedule, by name (their number is bounded at admission).
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.schedules
            .iter()
            .map(|kv| self.dec("schedule", &kv?.1))
            .collect()
    }

    /// Forgets a schedule; whether it was there.
    pub fn remove_schedule(&self, name: &str) -> Result<bool> {
        let _gate = self.gate();
        self.faults.check()?;
        Ok(self.schedules.remove(name.as_bytes())?.is_some())
    }

    /// How many schedules there are.
    pub fn schedule_count(&self) -> usize {
        self.schedules.len()
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{CatchUpPolicy, Overlap, ScheduleSpec, Sha256, TaskSpec};

    use super::*;
    use crate::testing::{flush, reopen, temp_store};

    fn rec(name: &str) -> ScheduleRecord {
        ScheduleRecord {
            spec: ScheduleSpec {
                name: name.into(),
                cron: "*/2 * * * * *".into(),
                tz: "UTC".into(),
                overlap: Overlap::Skip,
                catch_up: CatchUpPolicy::One,
                task: Some(TaskSpec::wasm(Sha256::of(b"m"))),
                job: None,
            },
            paused: false,
            next_ms: Some(2_000),
            runs: Vec::new(),
            created_ms: 1,
        }
    }

    #[test]
    fn schedules_survive_a_reopen_and_are_removed() {
        let (dir, store) = temp_store();
        store.save_schedule(&rec("b")).unwrap();
        store.save_schedule(&rec("a")).unwrap();
        flush(&store);
        drop(store);
        let store = reopen(dir.path());
        let names: Vec<String> = store
            .schedules()
            .unwrap()
            .into_iter()
            .map(|r| r.spec.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.schedule("a").unwrap(), Some(rec("a")));
        assert!(store.remove_schedule("a").unwrap());
        assert!(!store.remove_schedule("a").unwrap());
        assert_eq!(store.schedule_count(), 1);
    }
}
