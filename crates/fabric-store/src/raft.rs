//! The Raft log and its small state, beside the replicated trees in the
//! same sled database (issue 26): one flush makes both durable.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `raft_log` | log index (8, BE) | an entry, as the Raft layer encoded it, sealed |
//! | `raft_meta` | name (`vote`, `purged`, `applied`, `snapshot`, ...) | bytes, sealed |
//!
//! This crate does not know openraft: the values are opaque bytes the Raft
//! layer (`fabric-raft`) encodes. They are sealed like every task value,
//! since entries carry commands in plaintext (each replica seals what it
//! applies with its own keys). The replicated trees' snapshot is in
//! [`snapshot`](Store::export_replicated).

mod snapshot;

use crate::{Result, Store, StoreError};

/// The kinds (associated data) the Raft values are sealed as.
pub(crate) const ENTRY: &str = "raft entry";
pub(crate) const META: &str = "raft meta";

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(k: &[u8]) -> Result<u64> {
    let b: [u8; 8] = k.try_into().map_err(|_| StoreError::Corrupt {
        what: ENTRY,
        source: fabric_proto::CodecError::Decode("a log index is not 8 bytes".into()),
    })?;
    Ok(u64::from_be_bytes(b))
}

impl Store {
    fn seal_raw(&self, what: &'static str, plain: &[u8]) -> Vec<u8> {
        self.crypt().seal(what.as_bytes(), plain)
    }

    fn open_raw(&self, what: &'static str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.crypt()
            .open(what.as_bytes(), sealed)
            .map_err(|source| StoreError::Sealed { what, source })
    }

    /// Appends log entries (index, encoded entry), replacing any at the
    /// same indexes. Not durable until [`Store::flush`].
    pub fn raft_append(&self, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        let _gate = self.gate();
        let mut batch = sled::Batch::default();
        for (index, bytes) in entries {
            batch.insert(&index_key(*index), self.seal_raw(ENTRY, bytes));
        }
        self.raft_log.apply_batch(batch)?;
        Ok(())
    }

    /// The entries with indexes in `from..to`, in order.
    pub fn raft_entries(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        self.raft_entries_within(from, to, usize::MAX)
    }

    /// [`Store::raft_entries`], stopping once the entries read hold
    /// `max_bytes` (at least one entry is read).
    pub fn raft_entries_within(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let mut bytes = 0usize;
        for kv in self.raft_log.range(index_key(from)..index_key(to)) {
            if bytes >= max_bytes {
                break;
            }
            let (k, v) = kv?;
            let entry = self.open_raw(ENTRY, &v)?;
            bytes = bytes.saturating_add(entry.len());
            out.push((key_index(&k)?, entry));
        }
        Ok(out)
    }

    /// The last entry of the log, if any.
    pub fn raft_last_entry(&self) -> Result<Option<(u64, Vec<u8>)>> {
        match self.raft_log.last()? {
            Some((k, v)) => Ok(Some((key_index(&k)?, self.open_raw(ENTRY, &v)?))),
            None => Ok(None),
        }
    }

    /// Removes the entries at `from` and after (a conflict).
    pub fn raft_truncate(&self, from: u64) -> Result<()> {
        self.remove_log_range(index_key(from)..)
    }

    /// Removes the entries up to and including `through` (compaction).
    pub fn raft_purge(&self, through: u64) -> Result<()> {
        self.remove_log_range(..=index_key(through))
    }

    fn remove_log_range<R: std::ops::RangeBounds<[u8; 8]>>(&self, range: R) -> Result<()> {
        let _gate = self.gate();
        let mut batch = sled::Batch::default();
        for k in self.raft_log.range(range).keys() {
            batch.remove(k?);
        }
        self.raft_log.apply_batch(batch)?;
        Ok(())
    }

    /// The number of entries the log holds.
    pub fn raft_log_len(&self) -> usize {
        self.raft_log.len()
    }

    /// A value of the Raft layer's own state.
    pub fn raft_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.raft_meta
            .get(name)?
            .map(|v| self.open_raw(META, &v))
            .transpose()
    }

    /// Writes (or with `None` removes) a value of the Raft layer's state.
    /// Not durable until [`Store::flush`].
    pub fn set_raft_meta(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        let _gate = self.gate();
        match value {
            Some(v) => self.raft_meta.insert(name, self.seal_raw(META, v))?,
            None => self.raft_meta.remove(name)?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
