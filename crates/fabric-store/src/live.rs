//! Reading every unfinished task at start, on every core.
//!
//! A restart with a million queued tasks reads a million records: a sled
//! read, an AES-GCM open and a decode each, about 5 µs in all. The `live`
//! index is walked on the calling thread, which hands its entries in
//! chunks to [`READERS`] threads that read and decode them; the caller
//! then gets the records back in the index's order (queue order).
//!
//! Each entry's value is the task's sealed [`QueuedRecord`], written in
//! the same transaction as its record ([`crate::TaskWrite`]), so
//! [`Store::each_queued`] reads the index alone: no record is looked up.
//! An entry written before summaries were kept has an empty value (a
//! rewrap or a group's snapshot may have sealed it: it opens empty); its
//! record is read instead.

use std::sync::mpsc;

use fabric_proto::{QueuedRecord, TaskId, TaskState};
use serde::de::DeserializeOwned;

use crate::{Result, Store};

/// Threads reading records besides the caller.
const READERS: usize = 2;
/// Ids per chunk handed to a reader.
const CHUNK: usize = 4_096;
/// Chunks each reader may have decoded ahead of the caller: memory stays
/// at a few chunks, whatever the number of tasks.
const AHEAD: usize = 2;

std::thread_local! {
    /// A reader thread's buffer for opened summaries.
    static PLAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One chunk: its index keys and, per key, the record decoded (`None`:
/// the record is gone or finished, so the index entry is stale).
type Chunk<T> = Vec<(sled::IVec, Option<T>)>;

/// An index entry: its key and value.
type Entry = (sled::IVec, sled::IVec);

impl Store {
    /// Every unfinished task's [`QueuedRecord`], from the summaries the
    /// index holds (see the module's doc), made into a `T` by `make` and
    /// given to `each`, **in no particular order**; as [`Store::each_live`]
    /// otherwise. The index is walked by the reader threads, each its own
    /// part of it, and `make` runs there too, so the caller's thread only
    /// takes what they made.
    pub fn each_queued<T: Send>(
        &self,
        make: impl Fn(QueuedRecord) -> T + Sync,
        each: impl FnMut(T),
    ) -> Result<usize> {
        let make = &make;
        self.each_entry_split(
            |(key, value)| {
                if !value.is_empty() {
                    let opened = PLAIN.with_borrow_mut(|plain| {
                        self.crypt().open_into(b"queued", value, plain)?;
                        Ok::<_, crate::crypt::OpenError>(
                            (!plain.is_empty()).then(|| QueuedRecord::from_summary(plain)),
                        )
                    });
                    match opened {
                        Ok(None) => {}
                        Ok(Some(Ok(q))) => return Ok(Some(make(q))),
                        Ok(Some(Err(e))) => tracing::warn!(error = %e, "a queue-index summary does not decode; reading the task's record"),
                        // Not sealed (written by a member that did not
                        // seal summaries), or not openable: the record
                        // decides.
                        Err(e) => tracing::warn!(error = %e, "a queue-index summary does not open; reading the task's record"),
                    }
                }
                Ok(self
                    .live_record(key, &|r: &QueuedRecord| r.state)?
                    .map(make))
            },
            each,
        )
    }

    /// Every unfinished task in queue order, each decoded as `T` (a
    /// projection of [`fabric_proto::TaskRecord`]: the decoder skips the
    /// fields `T` lacks, so a caller that needs a few fields of a million
    /// records neither builds nor holds the rest) and given to `each`.
    /// `state` reads a task's state from a `T`. Index entries that
    /// outlived their task are removed. Returns how many were given.
    pub fn each_live<T: DeserializeOwned + Send>(
        &self,
        state: impl Fn(&T) -> TaskState + Sync,
        each: impl FnMut(T),
    ) -> Result<usize> {
        self.each_entry(|(key, _)| self.live_record(key, &state), each)
    }

    /// Walks the index, `read` turning each entry into its task (`None`:
    /// a stale entry, removed) on the reader threads; see
    /// [`Store::each_live`].
    fn each_entry<T: Send>(
        &self,
        read: impl Fn(&Entry) -> Result<Option<T>> + Sync,
        mut each: impl FnMut(T),
    ) -> Result<usize> {
        let read = &read;
        std::thread::scope(|scope| {
            let mut to_readers = Vec::with_capacity(READERS);
            let mut from_readers = Vec::with_capacity(READERS);
            for _ in 0..READERS {
                let (tx, rx) = mpsc::sync_channel::<Vec<Entry>>(AHEAD);
                let (back, from) = mpsc::sync_channel::<Result<Chunk<T>>>(AHEAD);
                to_readers.push(tx);
                from_readers.push(from);
                scope.spawn(move || {
                    for entries in rx {
                        let read = read_chunk(entries, read);
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
                keys.push(entry?);
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

    /// Like [`Store::each_entry`], but each reader walks its own part of
    /// the index (split at the middle of its first and last keys), and what
    /// they read comes back in no particular order.
    fn each_entry_split<T: Send>(
        &self,
        read: impl Fn(&Entry) -> Result<Option<T>> + Sync,
        mut each: impl FnMut(T),
    ) -> Result<usize> {
        let (Some((first, _)), Some((last, _))) = (self.live.first()?, self.live.last()?) else {
            return Ok(0);
        };
        let mid = middle_key(&first, &last);
        let parts = [(None, Some(mid.clone())), (Some(mid), None)];
        let read = &read;
        std::thread::scope(|scope| {
            // A task, or the key of a stale entry (the keys of the others
            // stay on the reader's thread, which allocated them).
            let (back, from) = mpsc::sync_channel::<Result<Vec<std::result::Result<T, sled::IVec>>>>(
                READERS * AHEAD,
            );
            for (from_key, to_key) in parts {
                let back = back.clone();
                scope.spawn(move || {
                    let range = match (from_key, to_key) {
                        (None, Some(to)) => self.live.range(..to),
                        (Some(from), None) => self.live.range(from..),
                        _ => unreachable!("two parts"),
                    };
                    let mut chunk = Vec::with_capacity(CHUNK);
                    for entry in range {
                        let made = entry
                            .map_err(Into::into)
                            .and_then(|e| Ok(read(&e)?.ok_or(e.0)));
                        match made {
                            Ok(one) => chunk.push(one),
                            Err(e) => {
                                let _ = back.send(Err(e));
                                return;
                            }
                        }
                        if chunk.len() == CHUNK {
                            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                            if back.send(Ok(full)).is_err() {
                                return;
                            }
                        }
                    }
                    if !chunk.is_empty() {
                        let _ = back.send(Ok(chunk));
                    }
                });
            }
            drop(back);
            let mut given = 0;
            for chunk in from {
                for rec in chunk? {
                    match rec {
                        Ok(rec) => {
                            each(rec);
                            given += 1;
                        }
                        // Index entry outlived its task's terminal write.
                        Err(key) => {
                            self.live.remove(&key)?;
                        }
                    }
                }
            }
            Ok(given)
        })
    }

    /// The unfinished task a `live` key names, read from its record
    /// (`None`: gone, finished, or the key is malformed).
    fn live_record<T: DeserializeOwned>(
        &self,
        key: &[u8],
        state: &impl Fn(&T) -> TaskState,
    ) -> Result<Option<T>> {
        let Some(id_bytes) = key.get(9..25) else {
            tracing::warn!("dropping malformed live-index key");
            return Ok(None);
        };
        let id = TaskId::from_bytes(id_bytes.try_into().expect("16 bytes"));
        let rec: Option<T> = self
            .tasks
            .get(id.as_bytes())?
            .map(|v| self.dec("task", &v))
            .transpose()?;
        Ok(rec.filter(|r| !state(r).is_terminal()))
    }
}

/// A key between `first` and `last` (inclusive of neither end's order):
/// the middle of their first 9 bytes (priority rank and sequence number)
/// as one number, so each half of the index holds about half the tasks
/// when their numbers are spread evenly.
fn middle_key(first: &[u8], last: &[u8]) -> Vec<u8> {
    let head = |k: &[u8]| {
        let mut b = [0u8; 16];
        for (i, byte) in k.iter().take(9).enumerate() {
            b[7 + i] = *byte;
        }
        u128::from_be_bytes(b)
    };
    let mid = head(first) / 2 + head(last) / 2 + (head(first) % 2 + head(last) % 2) / 2;
    mid.to_be_bytes()[7..].to_vec()
}

/// Reads and decodes the tasks a chunk of `live` entries names.
fn read_chunk<T>(
    entries: Vec<Entry>,
    read: &impl Fn(&Entry) -> Result<Option<T>>,
) -> Result<Chunk<T>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let rec = read(&entry)?;
        out.push((entry.0, rec));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
