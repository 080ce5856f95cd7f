//! Fabric's durable state on sled.
//!
//! One sled database per dispatcher, with these trees:
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `tasks` | task id (16 bytes, time ordered) | [`TaskRecord`] (CBOR) |
//! | `live` | priority rank (1) + seq (8, BE) + id (16) | empty: every task not yet finished, in queue order |
//! | `results` | task id | [`TaskOutcome`] (CBOR), written once |
//! | `dead` | task id | empty: the dead-letter set |
//! | `blobs` | sha256 | bytes (modules) |
//! | `chunked` | sha256 | length (8, BE): the chunked blob (a task input) is whole and checked; its bytes are the file `inputs/<sha>` beside the trees |
//! | `events` | sequence (8, BE) | [`StoredEvent`] (CBOR) |
//! | `peers` | role (1) + public key (32) | name (UTF-8) |
//! | `blob_seen` | sha256 | last time (ms, BE) a live task referenced the blob ([retention](Store::sweep)) |
//! | `counts` | `tasks`, `dead`, `status/<status>` | count (8, BE), written with the task trees ([`Store::totals`]) |
//! | `jobs` | job id (16 bytes, time ordered) | [`JobRecord`](fabric_proto::JobRecord) (CBOR): its spec and its tasks per step |
//! | `schedules` | schedule name (UTF-8) | [`ScheduleRecord`](fabric_proto::ScheduleRecord) (CBOR): its spec, next planned time and latest runs |
//! | `raft_log`, `raft_meta` | see [the Raft trees](Store::raft_append) | the Raft log and its state (issue 26) |
//! | `meta` | name | bytes; `token/<hex sha256>` is a join token's [`JoinTokenRecord`], `apitoken/<id>` a REST token's [`ApiTokenRecord`] |
//!
//! Each tree has its room: [`tasks`](Store::save_task) (with `live`,
//! `results` and `dead`), [blobs](Store::put_blob),
//! [events](Store::append_event), [peers](Store::add_peer) and
//! [keys](Store::add_join_token) (the `meta` tree).
//!
//! The store's directory is made mode 0700 and its files 0600: it holds
//! task inputs and outputs and the digests of join secrets.
//!
//! Task writes go through one sled transaction over `tasks`, `live`,
//! `results` and `dead`, so a crash never leaves a task half moved. Nothing
//! here waits for the disk: callers that acknowledge a write to anyone await
//! [`GroupCommit::durable`] first, which batches many writers into one
//! flush.
//!
//! [`TaskRecord`]: fabric_proto::TaskRecord
//! [`TaskOutcome`]: fabric_proto::TaskOutcome

mod api_tokens;
mod args;
mod backup;
mod blobs;
pub mod command;
mod commit;
mod counts;
pub mod crypt;
mod events;
mod faults;
mod jobs;
mod keys;
mod live;
mod peers;
mod private;
mod raft;
mod retention;
mod rewrap;
mod schedules;
mod seq;
mod tally;
mod tasks;
mod upgrade;
mod writes;

use std::path::Path;
use std::sync::Arc;

use fabric_proto::{CodecError, from_own_cbor, to_cbor};
use serde::Serialize;

pub use api_tokens::ApiTokenRecord;
pub use args::{INLINE_ARGS_MAX, TaskArgs};
pub use backup::{BackupSummary, RestoreError, restore};
pub use blobs::{BlobReader, BlobWriter, ChunkError, ChunkProgress};
pub use command::{Applied, Command, TaskOp};
pub use commit::GroupCommit;
pub use counts::TaskTotals;
pub use crypt::keyring::{KeyError, KeyState, Keyring, OperatorKey, Wrap, generate_key_hex};
pub use events::{EventKind, StoredEvent};
pub use keys::{JoinTokenRecord, TokenRefusal};
pub use peers::PeerRole;
pub use retention::{RetentionPolicy, SweepCursor, Swept};
pub use rewrap::{PLAINTEXT, RewrapProgress};
pub(crate) use seq::SEQ_HW_KEY;

/// The `meta` prefix of the marks of chunked blobs a group's log carried
/// whole ([`Store::blob_replicated`]).
pub(crate) const BLOB_REPLICATED: &str = "blobrep/";
pub use tally::IoTally;
pub use tasks::{MAX_LIST_SCAN, StoreCounts, live_key};
pub use upgrade::{FORMAT, FORMAT_KEY};
pub use writes::{Durable, FlushObserver, MAX_WRITE_BATCH, TaskWrite, Writer};

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
    /// Another process holds the store (a dispatcher already runs on it).
    #[error("a dispatcher is already running on this data dir (its store {path} is locked)")]
    Locked {
        /// The store's directory.
        path: String,
    },
    /// The store's directory or files could not be made private.
    #[error("cannot restrict access to {path}: {source}")]
    Permissions {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// sled failed.
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    /// A blob file could not be read or written.
    #[error("store file I/O failed: {0}")]
    Io(#[from] std::io::Error),
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
    /// In a group of dispatchers: the write was not committed because this
    /// dispatcher does not lead (any more), or lost the majority; ask
    /// again (the leader, or this one shortly).
    #[error("{0}")]
    NotLeading(String),
    /// A stored value does not open under the keyring's keys.
    #[error("stored {what} cannot be decrypted: {source}")]
    Sealed {
        /// Which kind of value.
        what: &'static str,
        /// Why.
        #[source]
        source: crypt::OpenError,
    },
    /// The keyring cannot be opened (a wrong or missing key) or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store was written by a newer Fabric.
    #[error(
        "the store at {path} has format {found}, newer than this Fabric reads ({supported}); run the Fabric that wrote it, or restore a backup made before the upgrade"
    )]
    NewerFormat {
        /// Its directory.
        path: String,
        /// Its format.
        found: u32,
        /// The newest this build reads.
        supported: u32,
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

/// The dispatcher's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// The store's directory.
    dir: std::path::PathBuf,
    /// Chunked blobs (task inputs), one file each.
    inputs_dir: std::path::PathBuf,
    /// Added to sled's id counter (see [`Store::next_seq`]).
    seq_floor: u64,
    /// The highest sequence number applied from a Raft log (a leader
    /// elected later numbers above it; see [`Store::next_seq`]).
    seq_hw: Arc<std::sync::atomic::AtomicU64>,
    /// What `meta` holds of it.
    seq_hw_kept: Arc<std::sync::atomic::AtomicU64>,
    /// The next sequence number to give (see `seq.rs`).
    seq_next: Arc<std::sync::atomic::AtomicU64>,
    /// One rewrap step (or a pass's start) at a time.
    rewrap_lock: Arc<std::sync::Mutex<()>>,
    /// Every write holds it shared; a backup holds it alone while it
    /// copies the trees, so its copy is of one moment.
    gate: Arc<std::sync::RwLock<()>>,
    tasks: sled::Tree,
    live: sled::Tree,
    results: sled::Tree,
    dead: sled::Tree,
    blobs: sled::Tree,
    chunked: sled::Tree,
    events: sled::Tree,
    peers: sled::Tree,
    meta: sled::Tree,
    counts: sled::Tree,
    jobs: sled::Tree,
    schedules: sled::Tree,
    raft_log: sled::Tree,
    raft_meta: sled::Tree,
    /// The data keys everything of a task is sealed with.
    keyring: Arc<Keyring>,
    faults: faults::Faults,
    /// Held while a chunked blob is sealed or swept, so a sweep never
    /// unlinks the file of a blob sealed again meanwhile.
    chunks: std::sync::Arc<std::sync::Mutex<()>>,
    /// Commits and flushes made (see [`Store::io_tally`]).
    tally: Arc<tally::Tally>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, its keyring wrapped by a key
    /// kept beside it (see [`Store::open_keyed`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_keyed(dir, None)
    }

    /// Opens (or creates) the store in `dir` with the operator's key, which
    /// wraps the keyring. A wrong or missing key is refused before
    /// anything in `dir` changes; a store of an older format is backed up
    /// beside `dir` and upgraded; a newer one is refused.
    pub fn open_keyed(dir: &Path, operator: Option<&OperatorKey>) -> Result<Self> {
        let upgraded = upgrade::upgrade(dir, operator)?;
        // Only a new store gets a new keyring; one that lost its keyring
        // is refused (its values could not be read).
        let may_create = !upgrade::exists(dir);
        if !dir.exists() {
            private::create_dir(dir)?;
        }
        let keyring = Arc::new(Keyring::open(dir, operator, may_create)?);
        private::create_dir(dir)?;
        let db = if upgraded {
            // sled lets go of the upgrade's lock from a thread of its own
            // shortly after its handles dropped.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match open_sled(dir) {
                    Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => break other?,
                }
            }
        } else {
            open_sled(dir)?
        };
        keyring.finish_open()?;
        let inputs_dir = dir.join("inputs");
        private::create_dir(&inputs_dir)?;
        let store = Self {
            dir: dir.to_owned(),
            inputs_dir,
            gate: Arc::default(),
            seq_floor: 0,
            seq_hw: Arc::default(),
            seq_hw_kept: Arc::default(),
            seq_next: Arc::default(),
            rewrap_lock: Arc::default(),
            tasks: db.open_tree("tasks")?,
            live: db.open_tree("live")?,
            results: db.open_tree("results")?,
            dead: db.open_tree("dead")?,
            blobs: db.open_tree("blobs")?,
            chunked: db.open_tree("chunked")?,
            events: db.open_tree("events")?,
            peers: db.open_tree("peers")?,
            meta: db.open_tree("meta")?,
            counts: db.open_tree("counts")?,
            jobs: db.open_tree("jobs")?,
            schedules: db.open_tree("schedules")?,
            raft_log: db.open_tree("raft_log")?,
            raft_meta: db.open_tree("raft_meta")?,
            keyring,
            faults: faults::Faults::default(),
            chunks: std::sync::Arc::default(),
            tally: Arc::default(),
            db,
        };
        let mut store = store;
        store.seq_floor = upgrade::seq_floor(&store.meta)?;
        store.load_seq_hw()?;
        store.start_seq()?;
        store.check_format(dir)?;
        store.migrate_join_secrets()?;
        store.count_once()?;
        private::restrict_tree(dir)?;
        Ok(store)
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<()> {
        self.faults.check_flush()?;
        self.db.flush_async().await?;
        self.tally.flushed();
        Ok(())
    }
}

/// Opens (and locks) the sled database in `dir`.
pub(crate) fn open_sled(dir: &Path) -> Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .flush_every_ms(Some(200))
        // sled's default page cache is 1 GiB; the hot set is small.
        .cache_capacity(64 << 20)
        .open()
        .map_err(|source| match &source {
            // sled wraps the lock's EWOULDBLOCK in a message of its own.
            sled::Error::Io(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: dir.display().to_string(),
                }
            }
            _ => StoreError::Open {
                path: dir.display().to_string(),
                source,
            },
        })
}

impl Store {
    /// The keyring: its state, and rotation.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn crypt(&self) -> &crypt::Crypt {
        self.keyring.crypt()
    }

    /// Held by every write (see `Store::gate`).
    fn gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds every write off (a backup's copy of the trees).
    fn close_gate(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Encodes a stored value as CBOR and seals it (the kind is bound to
    /// it).
    fn enc<T: Serialize>(&self, what: &'static str, v: &T) -> Result<Vec<u8>> {
        let plain = to_cbor(v).map_err(|source| StoreError::Encode { what, source })?;
        Ok(self.crypt().seal(what.as_bytes(), &plain))
    }

    /// Opens and decodes a stored value; failure means the store is
    /// damaged (or its keys are not the ones it was sealed with).
    fn dec<T: serde::de::DeserializeOwned>(&self, what: &'static str, b: &[u8]) -> Result<T> {
        let plain = self
            .crypt()
            .open(what.as_bytes(), b)
            .map_err(|source| StoreError::Sealed { what, source })?;
        // Sealed by this store's key, so authentic: the faster decoder.
        from_own_cbor(&plain).map_err(|source| StoreError::Corrupt { what, source })
    }
}

#[cfg(test)]
mod at_rest_tests;

/// Helpers shared by the rooms' unit tests.
#[cfg(test)]
mod testing {
    use super::Store;

    /// Every path below `dir`, directories and files.
    pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
        out
    }

    /// A store in a fresh temporary directory (removed when the guard drops).
    pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// Opens the store in `dir` again: sled lets go of its lock from a
    /// background thread shortly after the last handle drops, so a
    /// reopen at once may find it still held; tried for up to 5 s.
    pub(crate) fn reopen(dir: &std::path::Path) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Store::open(dir) {
                Ok(s) => return s,
                Err(crate::StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("reopen {}: {e}", dir.display()),
            }
        }
    }

    /// Blocks on [`Store::flush`].
    pub(crate) fn flush(store: &Store) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(store.flush())
            .unwrap();
    }
}
