//! Retention: the event log, finished tasks and blobs are removed by age
//! and count, a bounded number of entries per pass, so a sweep never holds
//! the store for long and the store never grows without end.
//!
//! | what | kept | default |
//! | --- | --- | --- |
//! | events | the newest `events_keep`, none older than `events_max_age_ms` | 100,000; 7 days |
//! | finished tasks (record and outcome) | `results_max_age_ms` after they finished | 7 days |
//! | dead letters | `dead_letters_max_age_ms` after they finished | 30 days |
//! | blobs (modules, and chunked inputs with their files) | while a live task references them, and `blobs_unused_ms` after | 7 days |
//! | unfinished uploads (`inputs/*.part`) | `uploads_stale_ms` after their last piece | 1 hour |
//!
//! A blob's last use is kept in the `blob_seen` tree: the time a sweep
//! last saw it referenced by a live task (or first saw it at all).

use std::collections::HashSet;

use fabric_proto::{Sha256, TaskOutcome, TaskRecord};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::{Result, Store};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// How long things are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Newest events kept.
    pub events_keep: usize,
    /// Events older than this are removed (ms).
    pub events_max_age_ms: u64,
    /// Finished tasks are removed this long after their last update (ms).
    pub results_max_age_ms: u64,
    /// Dead letters are removed this long after their last update (ms).
    pub dead_letters_max_age_ms: u64,
    /// Blobs no live task references are removed after this long (ms).
    pub blobs_unused_ms: u64,
    /// An upload no piece arrived for in this long is removed (ms).
    pub uploads_stale_ms: u64,
    /// Most entries of each tree one pass looks at.
    pub max_per_pass: usize,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            events_keep: 100_000,
            events_max_age_ms: 7 * DAY_MS,
            results_max_age_ms: 7 * DAY_MS,
            dead_letters_max_age_ms: 30 * DAY_MS,
            blobs_unused_ms: 7 * DAY_MS,
            uploads_stale_ms: DAY_MS / 24,
            max_per_pass: 1_000,
        }
    }
}

/// What one pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Events.
    pub events: usize,
    /// Finished tasks (record, outcome, dead-letter mark).
    pub tasks: usize,
    /// Blobs (whole and chunked).
    pub blobs: usize,
    /// Unfinished uploads.
    pub uploads: usize,
}

/// Where the task sweep resumes (it walks the tasks tree a slice per pass).
#[derive(Clone, Debug, Default)]
pub struct SweepCursor {
    tasks: Option<Vec<u8>>,
    blobs: Option<Vec<u8>>,
    chunked: Option<Vec<u8>>,
}

impl Store {
    /// One retention pass at `now_ms`; `referenced` are the blobs live tasks
    /// use.
    pub fn sweep(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
        referenced: &HashSet<Sha256>,
        cursor: &mut SweepCursor,
    ) -> Result<Swept> {
        Ok(Swept {
            events: self.sweep_events(policy, now_ms)?,
            tasks: self.sweep_tasks(policy, now_ms, cursor)?,
            blobs: self.sweep_blobs(policy, now_ms, referenced, cursor)?,
            uploads: self.sweep_uploads(policy, now_ms)?,
        })
    }

    /// Removes the oldest events past the count or the age.
    fn sweep_events(&self, policy: &RetentionPolicy, now_ms: u64) -> Result<usize> {
        // Everything up to this key is beyond the newest `events_keep`.
        let over = self
            .events
            .iter()
            .keys()
            .rev()
            .nth(policy.events_keep)
            .transpose()?;
        let mut removed = 0;
        for kv in self.events.iter().take(policy.max_per_pass) {
            let (k, v) = kv?;
            let beyond_count = over.as_ref().is_some_and(|o| k <= *o);
            let ev: crate::StoredEvent = self.dec("event", &v)?;
            let too_old = ev.at_ms.saturating_add(policy.events_max_age_ms) <= now_ms;
            if !(beyond_count || too_old) {
                break;
            }
            self.events.remove(k)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes finished tasks past their retention, walking a slice of the
    /// tasks tree from `cursor`.
    fn sweep_tasks(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
        cursor: &mut SweepCursor,
    ) -> Result<usize> {
        let start = cursor.tasks.take().unwrap_or_default();
        let mut removed = 0;
        let mut seen = 0;
        for kv in self.tasks.range(start..) {
            let (k, v) = kv?;
            seen += 1;
            if seen > policy.max_per_pass {
                cursor.tasks = Some(k.to_vec());
                break;
            }
            let rec: TaskRecord = self.dec("task", &v)?;
            if !rec.state.is_terminal() {
                continue;
            }
            let keep_for = if rec.dead_letter {
                policy.dead_letters_max_age_ms
            } else {
                policy.results_max_age_ms
            };
            if rec.updated_ms.saturating_add(keep_for) <= now_ms {
                self.remove_task(&k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn remove_task(&self, id: &[u8]) -> Result<()> {
        let _gate = self.gate();
        (&self.tasks, &self.results, &self.dead, &self.counts)
            .transaction(|(tasks, results, dead, counts)| {
                if tasks.remove(id)?.is_some() {
                    crate::counts::bump_tasks(counts, -1)?;
                }
                if let Some(v) = results.remove(id)? {
                    // A result that does not decode is still gone; only its
                    // status count stays.
                    if let Ok(o) = self.dec::<TaskOutcome>("result", &v) {
                        crate::counts::finished(counts, o.status, -1)?;
                    }
                }
                if dead.remove(id)?.is_some() {
                    crate::counts::dead_letter(counts, -1)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(crate::tasks::tx_err)
    }

    /// Removes blobs no live task referenced for `blobs_unused_ms`: whole
    /// ones from sled, chunked ones with their files.
    fn sweep_blobs(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
        referenced: &HashSet<Sha256>,
        cursor: &mut SweepCursor,
    ) -> Result<usize> {
        let seen = self.db.open_tree("blob_seen")?;
        for sha in referenced {
            seen.insert(sha.as_bytes(), &now_ms.to_be_bytes())?;
        }
        let unused = |k: &[u8]| -> Result<bool> {
            let last = match seen.get(k)? {
                Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
                None => {
                    seen.insert(k, &now_ms.to_be_bytes())?;
                    return Ok(false);
                }
            };
            Ok(last.saturating_add(policy.blobs_unused_ms) <= now_ms)
        };
        let mut removed = 0;
        for k in slice(&self.blobs, &mut cursor.blobs, policy.max_per_pass)? {
            if unused(&k)? {
                self.blobs.remove(&k)?;
                seen.remove(&k)?;
                removed += 1;
            }
        }
        for k in slice(&self.chunked, &mut cursor.chunked, policy.max_per_pass)? {
            if unused(&k)? {
                // The tree entry first: a blob without it is invisible, so
                // a crash in between leaves an orphan file, never a
                // reference to a missing one. Under the chunk lock, so the
                // same content sealed again meanwhile keeps its file.
                let _sweeping = self.lock_chunks();
                self.chunked.remove(&k)?;
                if let Ok(sha) = <[u8; 32]>::try_from(k.as_slice()) {
                    remove_if_present(&self.piece_path(&Sha256::from_bytes(sha), false))?;
                }
                seen.remove(&k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes unfinished uploads that no piece reached for
    /// `uploads_stale_ms` (by their files' modification time), at most
    /// `max_per_pass` of them.
    fn sweep_uploads(&self, policy: &RetentionPolicy, now_ms: u64) -> Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.inputs_dir)? {
            if removed >= policy.max_per_pass {
                break;
            }
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "part") {
                continue;
            }
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            let modified_ms = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if modified_ms.saturating_add(policy.uploads_stale_ms) <= now_ms {
                remove_if_present(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Up to `max` keys of `tree` from `cursor`, leaving the cursor where the
/// next pass resumes (or at the start when the walk reached the end).
fn slice(tree: &sled::Tree, cursor: &mut Option<Vec<u8>>, max: usize) -> Result<Vec<Vec<u8>>> {
    let start = cursor.take().unwrap_or_default();
    let mut keys = Vec::new();
    for k in tree.range(start..).keys() {
        let k = k?;
        if keys.len() >= max {
            *cursor = Some(k.to_vec());
            break;
        }
        keys.push(k.to_vec());
    }
    Ok(keys)
}

fn remove_if_present(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
