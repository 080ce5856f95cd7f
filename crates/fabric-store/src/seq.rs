//! Sequence numbers (queue order, event keys): fresh and increasing
//! across restarts, restores and upgrades, and, in a group of dispatchers,
//! above every number a former leader gave out (a high-water mark kept at
//! apply and carried in snapshots).
//!
//! A number comes from a counter in memory, not from sled's
//! `generate_id`: that takes sled's process-wide lock (which every
//! transaction takes for writing) on each call, and once per million ids
//! it waits under that lock for the log to reach the disk, stalling every
//! reader and writer of the store meanwhile. What makes the counter safe
//! across restarts is that every number that matters is stored: a task's
//! in its record, with the highest kept in `counts` by the same
//! transaction ([`crate::counts::SEQ_TOP`]); an event's as its key. At
//! open the counter starts above both, above the Raft high-water mark,
//! and above sled's own counter (once, for stores numbered by it before).
//! A number given to a submit that never got stored may come again after
//! a crash: nothing holds it.

use std::sync::atomic::Ordering::{AcqRel, Acquire};

use crate::{Result, Store};

/// The `meta` key of the highest sequence number applied from a Raft log.
pub(crate) const SEQ_HW_KEY: &str = "seq_hw";

impl Store {
    /// A fresh, increasing sequence number (survives restarts, and a
    /// restore or upgrade into a new database: sled's own counter starts
    /// again there, so the store adds the floor those wrote). Above every
    /// number applied from a Raft log, so a new leader never reuses one
    /// its predecessor gave out.
    pub fn next_seq(&self) -> Result<u64> {
        let id = self.seq_next.fetch_add(1, AcqRel);
        // Strictly above everything given out or applied so far.
        let next = |hw: u64| if id > hw { id } else { hw.saturating_add(1) };
        let hw = self
            .seq_hw
            .fetch_update(AcqRel, Acquire, |hw| Some(next(hw)))
            .unwrap_or_else(|hw| hw);
        Ok(next(hw))
    }

    /// Notes sequence numbers applied from a Raft log (kept in `meta`, so
    /// they survive a restart and travel in snapshots).
    pub(crate) fn raise_seq(&self, seqs: impl Iterator<Item = u64>) -> Result<()> {
        let Some(top) = seqs.max() else {
            return Ok(());
        };
        self.seq_hw
            .fetch_max(top, std::sync::atomic::Ordering::AcqRel);
        // Against the mark kept in `meta`, not the one in memory: a
        // leader's own numbers raised that when it gave them out.
        let kept = self
            .seq_hw_kept
            .fetch_max(top, std::sync::atomic::Ordering::AcqRel);
        if top > kept {
            let _gate = self.gate();
            self.meta.fetch_and_update(SEQ_HW_KEY, |old| {
                let old = old
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map_or(0, u64::from_be_bytes);
                Some(old.max(top).to_be_bytes().to_vec())
            })?;
        }
        Ok(())
    }

    /// Starts the counter above every number stored or given out before
    /// (at open, after [`Store::load_seq_hw`]).
    pub(crate) fn start_seq(&self) -> Result<()> {
        let sled = self.db.generate_id()?.saturating_add(self.seq_floor);
        let task = crate::counts::seq_top(&self.counts)?.saturating_add(1);
        let event = match self.events.last()? {
            Some((k, _)) => <[u8; 8]>::try_from(k.as_ref())
                .map_or(0, u64::from_be_bytes)
                .saturating_add(1),
            None => 0,
        };
        let applied = self.seq_hw.load(Acquire).saturating_add(1);
        self.seq_next
            .fetch_max(sled.max(task).max(event).max(applied), AcqRel);
        Ok(())
    }

    /// The next number the counter gives (above every number given).
    pub(crate) fn seq_counter(&self) -> u64 {
        self.seq_next.load(Acquire)
    }

    /// Loads the kept high-water mark (at open).
    pub(crate) fn load_seq_hw(&self) -> Result<()> {
        if let Some(v) = self.meta.get(SEQ_HW_KEY)?
            && let Ok(b) = <[u8; 8]>::try_from(v.as_ref())
        {
            self.seq_hw
                .fetch_max(u64::from_be_bytes(b), std::sync::atomic::Ordering::AcqRel);
            self.seq_hw_kept
                .fetch_max(u64::from_be_bytes(b), std::sync::atomic::Ordering::AcqRel);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
