//! The Raft log and vote in the store's sled database.
//!
//! Every write is made durable (a sled flush) before openraft hears of it:
//! a vote before `save_vote` returns, entries before `append`'s callback.
//! A follower answers the leader only after that callback, so an entry a
//! majority acknowledged is on a majority's disks.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use fabric_store::Store;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, Vote};

use crate::codec::{dec, enc, get_meta, io_error, put_meta};
use crate::{Fabric, StorageError};

const VOTE: &str = "vote";
const PURGED: &str = "purged";
const COMMITTED: &str = "committed";

/// The log store: a handle on the dispatcher's store (cheap to clone).
#[derive(Clone, Debug)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    /// The log kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn flush(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        self.store
            .flush()
            .await
            .map_err(|e| io_error(subject, ErrorVerb::Write, e))
    }
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&i) => i.saturating_add(1),
        Bound::Excluded(&i) => i,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

/// About the most bytes of entries one append RPC carries (at least one
/// entry goes). openraft gives each append a heartbeat interval to be
/// answered in; a follower catching up on megabytes of entries on a busy
/// machine would miss that every time and never catch up.
const APPEND_BYTES: usize = 256 << 10;

impl LogStore {
    fn read(&self, from: u64, to: u64, max: usize) -> Result<Vec<Entry<Fabric>>, StorageError> {
        self.store
            .raft_entries_within(from, to, max)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?
            .into_iter()
            .map(|(i, b)| dec(ErrorSubject::LogIndex(i), &b))
            .collect()
    }
}

impl RaftLogReader<Fabric> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Fabric>>, StorageError> {
        let (from, to) = bounds(&range);
        self.read(from, to, usize::MAX)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<Fabric>>, StorageError> {
        self.read(start, end, APPEND_BYTES)
    }
}

impl RaftLogStorage<Fabric> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Fabric>, StorageError> {
        let last_purged_log_id: Option<LogId<u64>> =
            get_meta(&self.store, PURGED, ErrorSubject::Logs)?;
        let last = self
            .store
            .raft_last_entry()
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let last_log_id = match last {
            Some((i, b)) => Some(dec::<Entry<Fabric>>(ErrorSubject::LogIndex(i), &b)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        put_meta(&self.store, VOTE, ErrorSubject::Vote, vote)?;
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        get_meta(&self.store, VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        // Not flushed: openraft only uses it to apply sooner at start.
        put_meta(&self.store, COMMITTED, ErrorSubject::Store, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        Ok(get_meta::<Option<LogId<u64>>>(&self.store, COMMITTED, ErrorSubject::Store)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Fabric>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<Fabric>> + Send,
        I::IntoIter: Send,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, enc(ErrorSubject::Log(e.log_id), &e)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        self.store
            .raft_append(&encoded)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        // Durable before openraft counts it (and a follower answers).
        let flushed = self.store.flush().await;
        callback.log_io_completed(flushed.map_err(std::io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.store
            .raft_truncate(log_id.index)
            .map_err(|e| io_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, e))?;
        self.flush(ErrorSubject::Log(log_id)).await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        // The mark first: a crash between the two leaves entries the mark
        // says are gone, which the next purge removes.
        put_meta(&self.store, PURGED, ErrorSubject::Logs, &log_id)?;
        self.flush(ErrorSubject::Logs).await?;
        self.store
            .raft_purge(log_id.index)
            .map_err(|e| io_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, e))
    }
}
