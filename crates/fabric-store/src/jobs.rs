//! Jobs: a [`JobRecord`] per job in the `jobs` tree, keyed by its id
//! (time ordered). A new job's record is written in the same transaction
//! as its tasks ([`Store::save_job_tasks`]), flushed before the job is
//! acknowledged, so every stored task of a job has its job and a job has
//! all its tasks. A rescue rewrites the record alone ([`Store::save_job`]).

use fabric_proto::{JobId, JobRecord};

use crate::{Result, Store};

impl Store {
    /// Writes a job's record (new, or after a rescue).
    pub fn save_job(&self, job: &JobRecord) -> Result<()> {
        let _gate = self.gate();
        self.faults.check()?;
        self.jobs.insert(job.id.as_bytes(), self.enc("job", job)?)?;
        self.tally.committed();
        Ok(())
    }

    /// A job's record.
    pub fn job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        self.jobs
            .get(id.as_bytes())?
            .map(|v| self.dec("job", &v))
            .transpose()
    }

    /// Up to `limit` jobs older than `before` (all when `None`), newest
    /// first.
    pub fn jobs(&self, limit: usize, before: Option<&JobId>) -> Result<Vec<JobRecord>> {
        let iter = match before {
            Some(b) => self.jobs.range(..b.as_bytes().to_vec()),
            None => self.jobs.iter(),
        };
        iter.rev()
            .take(limit)
            .map(|kv| self.dec("job", &kv?.1))
            .collect()
    }

    /// How many jobs are stored.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{JobSpec, TaskId};

    use super::*;
    use crate::testing::{flush, reopen, temp_store};

    fn record() -> JobRecord {
        JobRecord {
            id: JobId::new(),
            spec: JobSpec {
                name: "j".into(),
                steps: Vec::new(),
            },
            tasks: vec![vec![TaskId::new()]],
            submitted_ms: 1,
            rescues: 0,
        }
    }

    #[test]
    fn jobs_survive_a_reopen_and_list_newest_first() {
        let (dir, store) = temp_store();
        let (a, b, c) = (record(), record(), record());
        for j in [&a, &b, &c] {
            store.save_job(j).unwrap();
        }
        flush(&store);
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.job(&b.id).unwrap().as_ref(), Some(&b));
        let ids: Vec<JobId> = store.jobs(10, None).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(ids, [c.id, b.id, a.id]);
        let older: Vec<JobId> = store
            .jobs(1, Some(&c.id))
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(older, [b.id]);
        assert_eq!(store.job_count(), 3);
        assert!(store.job(&JobId::new()).unwrap().is_none());
    }
}
