//! Sequence numbers (queue order, event keys): fresh and increasing
//! across restarts, restores and upgrades, and, in a group of dispatchers,
//! above every number a former leader gave out (a high-water mark kept at
//! apply and carried in snapshots).

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
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let id = self.db.generate_id()?.saturating_add(self.seq_floor);
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
