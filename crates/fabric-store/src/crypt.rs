//! Encryption at rest: every value the store keeps of a task (records,
//! results, jobs, schedules, events, tokens) is sealed with AES-256-GCM
//! under the keyring's active data key before it reaches sled, and opened
//! on the way out.
//!
//! A sealed value is `0xFE`, the data key's id (4 bytes, BE), a 12-byte
//! nonce and the ciphertext with its 16-byte tag. The associated data is
//! the kind of value (`task`, `result`, ...), so one kind cannot be passed
//! off as another. Nonces never repeat under one key: each is the 4-byte
//! tag drawn when the store opens and a 64-bit counter that starts at a
//! random point; two opens would have to draw the same tag and overlapping
//! counter ranges.
//!
//! Module blobs stay plaintext: they are content-addressed code that any
//! worker runs and any submitter of the same digest already has. Chunked
//! blobs (inputs, args, staged and output files) are sealed files; see
//! `crypt/file.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use aes_gcm::aead::{Aead as _, AeadInPlace as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use rand_core::{OsRng, RngCore as _};

pub(crate) mod file;
mod keyfile;
pub mod keyring;

/// Which values of the store are sealed, and as what kind (the
/// associated data): tree, key prefix (empty: every value), kind. The one
/// list the rewrap, the upgrade and the census go by.
pub(crate) const SEALED_VALUES: [(&str, &[u8], &str); 10] = [
    ("tasks", b"", "task"),
    ("results", b"", "result"),
    ("events", b"", "event"),
    ("jobs", b"", "job"),
    ("schedules", b"", "schedule"),
    ("meta", b"token/", "join token"),
    ("meta", b"apitoken/", "api token"),
    ("raft_log", b"", crate::raft::ENTRY),
    ("raft_meta", b"", crate::raft::META),
    // An unfinished task's summary (`live.rs`); empty in entries written
    // before summaries were kept. Last: a rewrap's cursor holds a place
    // in this list, so new entries go at its end.
    ("live", b"", "queued"),
];

/// The first byte of a sealed value (no CBOR item starts with it: 0xFE is
/// a reserved simple value).
pub(crate) const SEALED: u8 = 0xFE;
/// Marker, key id, nonce.
pub(crate) const HEADER: usize = 1 + 4 + 12;
/// The GCM tag.
pub(crate) const TAG: usize = 16;

/// A value could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The value is not sealed (written before encryption, or damaged).
    #[error("the value is not sealed")]
    NotSealed,
    /// The value names a data key the keyring does not hold.
    #[error("the value was sealed with data key {0}, which the keyring does not hold")]
    UnknownKey(u32),
    /// The tag does not match: wrong key, or the value was altered.
    #[error("the value does not open under data key {0} (damaged or altered)")]
    Tampered(u32),
}

/// The data keys, the active one, and the nonce source.
pub struct Crypt {
    keys: RwLock<Keys>,
    nonce_tag: [u8; 4],
    counter: AtomicU64,
}

struct Keys {
    ciphers: BTreeMap<u32, Aes256Gcm>,
    active: u32,
}

impl std::fmt::Debug for Crypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypt")
            .field("keys", &self.key_ids())
            .field("active", &self.active_id())
            .finish_non_exhaustive()
    }
}

impl Crypt {
    /// A crypt over `keys` (id, raw 32-byte key) sealing with `active`.
    pub(crate) fn new(keys: &[(u32, [u8; 32])], active: u32) -> Arc<Self> {
        let ciphers = keys
            .iter()
            .map(|(id, k)| (*id, Aes256Gcm::new(k.into())))
            .collect();
        let mut nonce_tag = [0u8; 4];
        OsRng.fill_bytes(&mut nonce_tag);
        Arc::new(Self {
            keys: RwLock::new(Keys { ciphers, active }),
            nonce_tag,
            counter: AtomicU64::new(OsRng.next_u64()),
        })
    }

    /// The id of the key new values are sealed with.
    pub fn active_id(&self) -> u32 {
        self.keys().active
    }

    /// The ids of every key held, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys().ciphers.keys().copied().collect()
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.nonce_tag);
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        n[4..].copy_from_slice(&c.to_be_bytes());
        n
    }

    /// Seals `plain` under the active key with `aad` bound to it.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let keys = self.keys();
        let id = keys.active;
        let nonce = self.nonce();
        let ct = keys.ciphers[&id]
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM sealing of an in-memory value cannot fail");
        let mut out = Vec::with_capacity(HEADER + ct.len());
        out.push(SEALED);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value [`Crypt::seal`] made with the same `aad`.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut plain = Vec::new();
        self.open_into(aad, sealed, &mut plain)?;
        Ok(plain)
    }

    /// [`Crypt::open`] into `buf` (its bytes replaced): a caller opening
    /// many values in a row reuses one buffer.
    pub(crate) fn open_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let id = key_id(sealed).ok_or(OpenError::NotSealed)?;
        if sealed.len() < HEADER + TAG {
            return Err(OpenError::NotSealed);
        }
        buf.clear();
        buf.extend_from_slice(&sealed[HEADER..]);
        self.keys()
            .ciphers
            .get(&id)
            .ok_or(OpenError::UnknownKey(id))?
            .decrypt_in_place(Nonce::from_slice(&sealed[5..HEADER]), aad, buf)
            .map_err(|_| OpenError::Tampered(id))
    }

    /// Seals one segment of a file (see `crypt/file.rs`) under key `id`,
    /// returning nonce, ciphertext and tag.
    pub(crate) fn seal_segment(
        &self,
        id: u32,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let nonce = self.nonce();
        let ct = self
            .keys()
            .ciphers
            .get(&id)
            .ok_or(OpenError::UnknownKey(id))?
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM sealing of an in-memory value cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a segment [`Crypt::seal_segment`] made.
    pub(crate) fn open_segment(
        &self,
        id: u32,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 12 + TAG {
            return Err(OpenError::Tampered(id));
        }
        self.keys()
            .ciphers
            .get(&id)
            .ok_or(OpenError::UnknownKey(id))?
            .decrypt(
                Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad,
                },
            )
            .map_err(|_| OpenError::Tampered(id))
    }

    /// Adds a data key and makes it the one new values are sealed with.
    pub(crate) fn add_active(&self, id: u32, key: &[u8; 32]) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        keys.ciphers.insert(id, Aes256Gcm::new(key.into()));
        keys.active = id;
    }
}

/// The key id a sealed value names, `None` when it is not sealed.
pub fn key_id(value: &[u8]) -> Option<u32> {
    if value.len() < HEADER || value[0] != SEALED {
        return None;
    }
    Some(u32::from_be_bytes([value[1], value[2], value[3], value[4]]))
}

#[cfg(test)]
mod tests;
