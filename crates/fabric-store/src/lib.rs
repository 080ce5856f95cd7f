//! Fabric's durable state on sled.
//!
//! One sled database per dispatcher, with these trees:
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `tasks` | task id (16 bytes, time ordered) | [`TaskRecord`] (CBOR) |
//! | `live` | priority (1) + seq (8, BE) + id (16) | empty: every task not yet finished, in queue order |
//! | `results` | task id | [`TaskOutcome`] (CBOR), written once |
//! | `dead` | task id | empty: the dead-letter set |
//! | `blobs` | sha256 | bytes (modules) |
//! | `events` | sequence (8, BE) | [`StoredEvent`] (CBOR) |
//! | `peers` | role (1) + public key (32) | name (UTF-8) |
//! | `meta` | name | bytes |
//!
//! Task writes go through one sled transaction over `tasks`, `live`,
//! `results` and `dead`, so a crash never leaves a task half moved. Nothing
//! here waits for the disk: callers that acknowledge a write to anyone await
//! [`GroupCommit::durable`] first, which batches many writers into one
//! flush.

mod commit;

use std::path::Path;

use fabric_proto::{
    CodecError, Priority, Sha256, TaskId, TaskOutcome, TaskRecord, TaskState, from_cbor, to_cbor,
};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use commit::GroupCommit;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// Its directory.
        path: String,
        /// Why.
        #[source]
        source: sled::Error,
    },
    /// sled failed.
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode (the file was damaged or written by an
    /// incompatible version).
    #[error("stored {what} is corrupt: {source}")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// Which kind of value.
        what: &'static str,
        /// Why.
        #[source]
        source: CodecError,
    },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Kinds of trusted peer keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// A worker that joined.
    Worker = 1,
    /// A client allowed to submit and inspect.
    Client = 2,
}

/// What an event log line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A task was admitted.
    Submitted,
    /// A task was leased to a worker.
    Leased,
    /// An attempt was lost with its worker or stream.
    Lost,
    /// A worker refused an attempt.
    Refused,
    /// A failed attempt will be retried.
    Retry,
    /// A result was recorded.
    Recorded,
    /// A task moved to the dead-letter set.
    DeadLetter,
    /// A task was cancelled.
    Cancelled,
    /// A result from a stale attempt was dropped.
    StaleResult,
    /// A worker joined with a token.
    WorkerJoined,
    /// A worker left or died.
    WorkerGone,
    /// A join token was minted.
    TokenCreated,
}

/// One line of the dispatcher's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The task, if the event is about one.
    pub task: Option<TaskId>,
    /// What happened.
    pub kind: EventKind,
    /// Details for people.
    pub detail: String,
}

/// The dispatcher's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tasks: sled::Tree,
    live: sled::Tree,
    results: sled::Tree,
    dead: sled::Tree,
    blobs: sled::Tree,
    events: sled::Tree,
    peers: sled::Tree,
    meta: sled::Tree,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn enc<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    to_cbor(v).map_err(|source| StoreError::Encode { what, source })
}

fn dec<T: serde::de::DeserializeOwned>(what: &'static str, b: &[u8]) -> Result<T> {
    from_cbor(b).map_err(|source| StoreError::Corrupt { what, source })
}

fn priority_byte(p: Priority) -> u8 {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

/// The `live` index key of a task: sorts by priority, then submission.
pub fn live_key(rec: &TaskRecord) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = priority_byte(rec.spec.priority);
    k[1..9].copy_from_slice(&rec.seq.to_be_bytes());
    k[9..].copy_from_slice(rec.id.as_bytes());
    k
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            // sled's default page cache is 1 GiB; the hot set is small.
            .cache_capacity(64 << 20)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(Self {
            tasks: db.open_tree("tasks")?,
            live: db.open_tree("live")?,
            results: db.open_tree("results")?,
            dead: db.open_tree("dead")?,
            blobs: db.open_tree("blobs")?,
            events: db.open_tree("events")?,
            peers: db.open_tree("peers")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// A fresh, increasing sequence number (survives restarts).
    pub fn next_seq(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Stores a blob under its sha256 (no-op when present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Sha256> {
        let sha = Sha256::of(bytes);
        if !self.blobs.contains_key(sha.as_bytes())? {
            self.blobs.insert(sha.as_bytes(), bytes)?;
        }
        Ok(sha)
    }

    /// A blob's bytes.
    pub fn blob(&self, sha: &Sha256) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(sha.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Whether a blob is stored.
    pub fn has_blob(&self, sha: &Sha256) -> Result<bool> {
        Ok(self.blobs.contains_key(sha.as_bytes())?)
    }

    /// Writes a task record; keeps the `live` index in step with its state.
    /// Once a task has a recorded result its record is final: a late write
    /// (a lease or retry decided before the result) is ignored, and the
    /// return value says whether the write happened.
    pub fn save_task(&self, rec: &TaskRecord) -> Result<bool> {
        let value = enc("task", rec)?;
        let key = live_key(rec);
        let terminal = rec.state.is_terminal();
        let dead_letter = rec.dead_letter;
        (&self.tasks, &self.live, &self.dead, &self.results)
            .transaction(|(tasks, live, dead, results)| {
                if results.get(rec.id.as_bytes())?.is_some() {
                    return Ok(false);
                }
                tasks.insert(rec.id.as_bytes(), value.as_slice())?;
                if terminal {
                    live.remove(&key[..])?;
                } else {
                    live.insert(&key[..], &[][..])?;
                }
                if dead_letter {
                    dead.insert(rec.id.as_bytes(), &[][..])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(tx_err)
    }

    /// Records a task's result together with its final record, unless a
    /// result is already recorded. Returns whether this call recorded it.
    pub fn record_result(&self, rec: &TaskRecord, outcome: &TaskOutcome) -> Result<bool> {
        let value = enc("task", rec)?;
        let result = enc("result", outcome)?;
        let key = live_key(rec);
        let dead_letter = rec.dead_letter;
        (&self.tasks, &self.live, &self.results, &self.dead)
            .transaction(|(tasks, live, results, dead)| {
                if results.get(rec.id.as_bytes())?.is_some() {
                    // Already final; make sure nothing keeps it live.
                    live.remove(&key[..])?;
                    return Ok(false);
                }
                results.insert(rec.id.as_bytes(), result.as_slice())?;
                tasks.insert(rec.id.as_bytes(), value.as_slice())?;
                live.remove(&key[..])?;
                if dead_letter {
                    dead.insert(rec.id.as_bytes(), &[][..])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(tx_err)
    }

    /// One task's record.
    pub fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>> {
        self.tasks
            .get(id.as_bytes())?
            .map(|v| dec("task", &v))
            .transpose()
    }

    /// One task's recorded result.
    pub fn result(&self, id: &TaskId) -> Result<Option<TaskOutcome>> {
        self.results
            .get(id.as_bytes())?
            .map(|v| dec("result", &v))
            .transpose()
    }

    /// Every unfinished task, in queue order (priority, then submission).
    /// This is what a dispatcher reloads on start.
    pub fn live_tasks(&self) -> Result<Vec<TaskRecord>> {
        let mut out = Vec::new();
        for entry in self.live.iter() {
            let (key, _) = entry?;
            let Some(id_bytes) = key.get(9..25) else {
                tracing::warn!("dropping malformed live-index key");
                self.live.remove(&key)?;
                continue;
            };
            let id = TaskId::from_bytes(id_bytes.try_into().expect("16 bytes"));
            match self.task(&id)? {
                Some(rec) if !rec.state.is_terminal() => out.push(rec),
                _ => {
                    // Index entry outlived its task's terminal write.
                    self.live.remove(&key)?;
                }
            }
        }
        Ok(out)
    }

    /// Tasks, newest first, optionally in one state, older than `before`.
    pub fn list(
        &self,
        state: Option<TaskState>,
        limit: usize,
        before: Option<&TaskId>,
    ) -> Result<Vec<TaskRecord>> {
        let iter = match before {
            Some(b) => self.tasks.range(..b.as_bytes().to_vec()),
            None => self.tasks.range::<Vec<u8>, _>(..),
        };
        let mut out = Vec::new();
        for entry in iter.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = entry?;
            let rec: TaskRecord = dec("task", &v)?;
            if state.is_none_or(|s| s == rec.state) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Counts tasks per state (scans the live index and the totals).
    pub fn counts(&self) -> Result<StoreCounts> {
        Ok(StoreCounts {
            tasks: self.tasks.len() as u64,
            live: self.live.len() as u64,
            results: self.results.len() as u64,
            dead_letters: self.dead.len() as u64,
        })
    }

    /// Ids in the dead-letter set.
    pub fn dead_letters(&self) -> Result<Vec<TaskId>> {
        self.dead
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Ok(TaskId::from_bytes(k.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt {
                        what: "dead-letter key",
                        source: CodecError::Decode(format!("key of {} bytes", k.len())),
                    }
                })?))
            })
            .collect()
    }

    /// Appends to the event log.
    pub fn append_event(&self, event: &StoredEvent) -> Result<()> {
        let seq = self.db.generate_id()?;
        self.events
            .insert(seq.to_be_bytes(), enc("event", event)?)?;
        Ok(())
    }

    /// The newest `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut out: Vec<StoredEvent> = self
            .events
            .iter()
            .values()
            .rev()
            .take(limit)
            .map(|v| dec("event", &v?))
            .collect::<Result<_>>()?;
        out.reverse();
        Ok(out)
    }

    /// Trusts a peer key in a role.
    pub fn add_peer(&self, role: PeerRole, key: &[u8; 32], name: &str) -> Result<()> {
        self.peers.insert(peer_key(role, key), name.as_bytes())?;
        Ok(())
    }

    /// Whether a key is trusted in a role.
    pub fn is_peer(&self, role: PeerRole, key: &[u8; 32]) -> Result<bool> {
        Ok(self.peers.contains_key(peer_key(role, key))?)
    }

    /// Reads a metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Remembers a join token's secret digest.
    pub fn add_join_secret(&self, digest: &[u8; 32]) -> Result<()> {
        self.set_meta(&format!("join/{}", hex::encode(digest)), b"1")
    }

    /// Whether a digest belongs to a minted join token.
    pub fn is_join_secret(&self, digest: &[u8; 32]) -> Result<bool> {
        Ok(self
            .meta(&format!("join/{}", hex::encode(digest)))?
            .is_some())
    }

    /// Writes a metadata value.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        self.meta.insert(name, value)?;
        Ok(())
    }
}

fn peer_key(role: PeerRole, key: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = role as u8;
    k[1..].copy_from_slice(key);
    k
}

fn tx_err(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => unreachable!("store transactions never abort"),
    }
}

/// Sizes of the main trees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    /// All tasks ever recorded.
    pub tasks: u64,
    /// Unfinished tasks.
    pub live: u64,
    /// Recorded results.
    pub results: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

#[cfg(test)]
mod tests;
