//! Workers that went away (declared dead, left, removed), remembered for a
//! while so `fabric workers`, the dashboard and REST still list them, with
//! when and why. Bounded in count and in age.

use std::collections::HashMap;

use fabric_proto::WorkerKey;
use fabric_proto::wire::{WorkerState, WorkerSummary};

/// Most gone workers remembered; the oldest is forgotten first.
pub(crate) const MAX_GONE: usize = 256;
/// How long a gone worker is listed.
pub(crate) const GONE_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// Gone workers by key.
#[derive(Debug, Default)]
pub(crate) struct Gone {
    by_key: HashMap<WorkerKey, WorkerSummary>,
}

impl Gone {
    /// Remembers `last` (the worker as it was listed) as gone since `now`:
    /// `down` with `why`, or `removed`.
    pub(crate) fn record(
        &mut self,
        mut last: WorkerSummary,
        state: WorkerState,
        why: String,
        now: u64,
    ) {
        last.state = state;
        last.running = 0;
        // Declared dead after the scheduler let it go: its last heartbeat
        // is no longer known; about now is closer than never.
        if last.last_seen_ms == 0 {
            last.last_seen_ms = now;
        }
        last.since_ms = Some(now);
        last.why = Some(why);
        self.by_key.insert(last.key, last);
        while self.by_key.len() > MAX_GONE {
            let oldest = self
                .by_key
                .values()
                .min_by_key(|w| (w.since_ms, w.key))
                .map(|w| w.key);
            match oldest {
                Some(k) => self.by_key.remove(&k),
                None => break,
            };
        }
    }

    /// A worker already gone was removed by an admin too.
    pub(crate) fn mark_removed(&mut self, key: &WorkerKey, why: String) {
        if let Some(w) = self.by_key.get_mut(key) {
            w.state = WorkerState::Removed;
            w.why = Some(why);
        }
    }

    /// It registered again: no longer gone.
    pub(crate) fn back(&mut self, key: &WorkerKey) {
        self.by_key.remove(key);
    }

    /// Those gone within the retention, oldest forgotten.
    pub(crate) fn listed(&mut self, now: u64) -> impl Iterator<Item = &WorkerSummary> {
        self.by_key
            .retain(|_, w| now.saturating_sub(w.since_ms.unwrap_or(now)) < GONE_RETENTION_MS);
        self.by_key.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_proto::wire::WorkerInfo;

    fn key(n: u16) -> WorkerKey {
        let mut k = [0u8; 32];
        k[..2].copy_from_slice(&n.to_le_bytes());
        WorkerKey(k)
    }

    fn worker(n: u16) -> WorkerSummary {
        WorkerSummary {
            key: key(n),
            addr: "127.0.0.1:1".into(),
            info: WorkerInfo {
                name: format!("w{n}"),
                slots: 1,
                memory_bytes: 1,
                labels: Vec::new(),
                wasm: true,
                commands: Vec::new(),
                running: Vec::new(),
            },
            running: 1,
            last_seen_ms: 0,
            state: WorkerState::Ready,
            since_ms: None,
            why: None,
        }
    }

    #[test]
    fn gone_workers_are_bounded_in_count_and_age_and_leave_when_back() {
        let mut gone = Gone::default();
        let over = u16::try_from(MAX_GONE).unwrap() + 10;
        for n in 0..over {
            gone.record(worker(n), WorkerState::Down, "left".into(), u64::from(n));
        }
        assert_eq!(gone.listed(300).count(), MAX_GONE);
        assert!(
            gone.listed(300).all(|w| w.since_ms >= Some(10)),
            "the oldest went first"
        );
        let w = gone.listed(300).next().cloned().unwrap();
        assert_eq!((w.state, w.running), (WorkerState::Down, 0));
        assert_eq!(w.why.as_deref(), Some("left"));
        gone.mark_removed(&w.key, "removed by an admin".into());
        let again = gone.listed(300).find(|x| x.key == w.key).cloned().unwrap();
        assert_eq!(again.state, WorkerState::Removed);
        gone.back(&w.key);
        assert!(gone.listed(300).all(|x| x.key != w.key));
        assert_eq!(
            gone.listed(GONE_RETENTION_MS + 1_000).count(),
            0,
            "aged out"
        );
    }
}
