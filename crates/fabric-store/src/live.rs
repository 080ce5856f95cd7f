//! Reading every unfinished task at start, on every core.
//!
//! A restart with a million queued tasks reads a million records: a sled
//! read, an AES-GCM open and a decode each, about 5 µs in all. The `live`
//! index is walked on the calling thread, which hands its ids in chunks
//! to [`READERS`] threads that read and decode them; the caller then gets
//! the records back in the index's order (queue order).

use std::sync::mpsc;

use fabric_proto::{TaskId, TaskState};
use serde::de::DeserializeOwned;

use crate::{Result, Store};

/// Threads reading records besides the caller.
const READERS: usize = 2;
/// Ids per chunk handed to a reader.
const CHUNK: usize = 4_096;
/// Chunks each reader may have decoded ahead of the caller: memory stays
/// at a few chunks, whatever the number of tasks.
const AHEAD: usize = 2;

/// One chunk: its index keys and, per key, the record decoded (`None`:
/// the record is gone or finished, so the index entry is stale).
type Chunk<T> = Vec<(sled::IVec, Option<T>)>;

impl Store {
    /// Every unfinished task in queue order, each decoded as `T` (a
    /// projection of [`fabric_proto::TaskRecord`]: the decoder skips the
    /// fields `T` lacks, so a caller that needs a few fields of a million
    /// records neither builds nor holds the rest) and given to `each`.
    /// `state` reads a task's state from a `T`. Index entries that
    /// outlived their task are removed. Returns how many were given.
    pub fn each_live<T: DeserializeOwned + Send>(
        &self,
        state: impl Fn(&T) -> TaskState + Sync,
        mut each: impl FnMut(T),
    ) -> Result<usize> {
        let state = &state;
        std::thread::scope(|scope| {
            let mut to_readers = Vec::with_capacity(READERS);
            let mut from_readers = Vec::with_capacity(READERS);
            for _ in 0..READERS {
                let (tx, rx) = mpsc::sync_channel::<Vec<sled::IVec>>(AHEAD);
                let (back, from) = mpsc::sync_channel::<Result<Chunk<T>>>(AHEAD);
                to_readers.push(tx);
                from_readers.push(from);
                scope.spawn(move || {
                    for keys in rx {
                        let read = self.read_chunk(keys, state);
                        let failed = read.is_err();
                        if back.send(read).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            let mut given = 0;
            let mut sent = 0usize;
            let mut taken = 0usize;
            let mut take = |given: &mut usize, taken: &mut usize| -> Result<()> {
                let chunk = from_readers[*taken % READERS]
                    .recv()
                    .expect("a reader answers every chunk it was sent")?;
                *taken += 1;
                for (key, rec) in chunk {
                    match rec {
                        Some(rec) => {
                            each(rec);
                            *given += 1;
                        }
                        // Index entry outlived its task's terminal write.
                        None => {
                            self.live.remove(&key)?;
                        }
                    }
                }
                Ok(())
            };
            let mut keys = Vec::with_capacity(CHUNK);
            for entry in self.live.iter() {
                let (key, _) = entry?;
                keys.push(key);
                if keys.len() == CHUNK {
                    // Keep at most AHEAD chunks per reader in flight.
                    if sent - taken >= READERS * AHEAD {
                        take(&mut given, &mut taken)?;
                    }
                    let full = std::mem::replace(&mut keys, Vec::with_capacity(CHUNK));
                    // A reader that stopped on an error: its error comes
                    // back in order below.
                    if to_readers[sent % READERS].send(full).is_err() {
                        keys.clear();
                        break;
                    }
                    sent += 1;
                }
            }
            if !keys.is_empty() {
                if sent - taken >= READERS * AHEAD {
                    take(&mut given, &mut taken)?;
                }
                if to_readers[sent % READERS].send(keys).is_ok() {
                    sent += 1;
                }
            }
            drop(to_readers);
            while taken < sent {
                take(&mut given, &mut taken)?;
            }
            Ok(given)
        })
    }

    /// Reads and decodes the tasks a chunk of `live` keys names.
    fn read_chunk<T: DeserializeOwned>(
        &self,
        keys: Vec<sled::IVec>,
        state: &impl Fn(&T) -> TaskState,
    ) -> Result<Chunk<T>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(id_bytes) = key.get(9..25) else {
                tracing::warn!("dropping malformed live-index key");
                out.push((key, None));
                continue;
            };
            let id = TaskId::from_bytes(id_bytes.try_into().expect("16 bytes"));
            let rec: Option<T> = self
                .tasks
                .get(id.as_bytes())?
                .map(|v| self.dec("task", &v))
                .transpose()?;
            let rec = rec.filter(|r| !state(r).is_terminal());
            out.push((key, rec));
        }
        Ok(out)
    }
}
