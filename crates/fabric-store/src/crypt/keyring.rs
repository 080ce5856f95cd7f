//! The keyring: the store's data keys, kept in `<store>/keyring` (0600),
//! each wrapped with AES-256-GCM by the operator's key (`--key-file`) or,
//! without one, by a key kept beside the data in `<store>/keyring.local-key`.
//!
//! The keyring names the fingerprint of the key that wraps it, so a wrong
//! key file is told apart from a damaged keyring, and both are refused
//! before anything on disk changes. A keyring wrapped by the local key is
//! wrapped again by an operator key the first time one is given (and the
//! local key removed), once the store is locked: that is how a store
//! started without a key file moves to one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};

use super::Crypt;
pub use super::keyfile::{OperatorKey, fingerprint, generate_key_hex, read_key_file};
use super::keyfile::{io, read_local_key, write_atomic, write_new};

/// The keyring's file name in the store's directory.
pub const KEYRING_FILE: &str = "keyring";
/// The local wrapping key's file name, when no operator key is given.
pub const LOCAL_KEY_FILE: &str = "keyring.local-key";

/// The keyring cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The keyring is wrapped by an operator key and none was given.
    #[error(
        "this store's data keys are wrapped by an operator key (fingerprint {fingerprint}); start with --key-file FILE (or FABRIC_KEY_FILE) naming that key"
    )]
    Missing {
        /// The wrapping key's fingerprint.
        fingerprint: String,
    },
    /// The store exists but its keyring does not.
    #[error(
        "the keyring {path} is missing: this store cannot be read without it; put it back (every backup holds it), or start on an empty data dir"
    )]
    NoKeyring {
        /// Where it should be.
        path: String,
    },
    /// The given key is not the one the keyring is wrapped by.
    #[error(
        "the key file's key (fingerprint {given}) is not the one this store's data keys are wrapped by (fingerprint {expected}); nothing was changed"
    )]
    Wrong {
        /// The keyring's wrapping key.
        expected: String,
        /// The key given.
        given: String,
    },
    /// The local wrapping key is gone.
    #[error(
        "this store's data keys are wrapped by the key in {path}, which cannot be read ({source}); restore that file, or the store cannot be read"
    )]
    LocalKey {
        /// Its path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a key.
    #[error("{path} is not a Fabric key: {why} (make one with `fabric admin gen-key`)")]
    BadKeyFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The keyring file does not decode or its keys do not unwrap.
    #[error("the keyring {path} is damaged: {why}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Reading or writing the keyring failed.
    #[error("keyring I/O on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What wraps the keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wrap {
    /// The operator's key file.
    Operator,
    /// A key beside the data.
    Local,
}

impl Wrap {
    /// `operator` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Local => "local",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WrappedKey {
    id: u32,
    created_ms: u64,
    /// Nonce, ciphertext and tag of the 32-byte key.
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyringFile {
    version: u32,
    wrap: Wrap,
    /// Hex of the first 8 bytes of the wrapping key's SHA-256.
    fingerprint: String,
    active: u32,
    keys: Vec<WrappedKey>,
}

/// The state of the keyring, as `/health` and `fabric admin keys` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// What wraps the data keys.
    pub wrap: Wrap,
    /// The wrapping key's fingerprint.
    pub fingerprint: String,
    /// The key new values are sealed with.
    pub active: u32,
    /// Every data key: id and when it was made (ms since the epoch).
    pub keys: Vec<(u32, u64)>,
}

/// The open keyring: its file and its wrapping key.
pub struct Keyring {
    path: PathBuf,
    inner: std::sync::Mutex<Inner>,
    crypt: Arc<Crypt>,
    /// An operator key given to a keyring the local key wraps: adopted by
    /// [`Keyring::finish_open`] once the store is locked.
    adopt: Option<[u8; 32]>,
}

struct Inner {
    file: KeyringFile,
    wrapping: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn wrap_aad(id: u32) -> Vec<u8> {
    format!("fabric data key {id}").into_bytes()
}

fn wrap_key(wrapping: &[u8; 32], id: u32, key: &[u8; 32]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let ct = Aes256Gcm::new(wrapping.into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key,
                aad: &wrap_aad(id),
            },
        )
        .expect("AES-GCM sealing of an in-memory value cannot fail");
    [nonce.as_slice(), &ct].concat()
}

fn unwrap_key(wrapping: &[u8; 32], k: &WrappedKey) -> Option<[u8; 32]> {
    if k.sealed.len() < 12 {
        return None;
    }
    let plain = Aes256Gcm::new(wrapping.into())
        .decrypt(
            Nonce::from_slice(&k.sealed[..12]),
            Payload {
                msg: &k.sealed[12..],
                aad: &wrap_aad(k.id),
            },
        )
        .ok()?;
    plain.try_into().ok()
}

impl Keyring {
    /// Opens the keyring in `dir` with the operator's key, if given, or
    /// makes a new one (one data key) when there is none and `may_create`
    /// (a new store). Refuses a wrong or missing key, or a missing keyring,
    /// before writing anything.
    pub fn open(
        dir: &Path,
        operator_key: Option<&OperatorKey>,
        may_create: bool,
    ) -> Result<Self, KeyError> {
        let operator = operator_key.map(OperatorKey::bytes);
        let path = dir.join(KEYRING_FILE);
        let local_path = dir.join(LOCAL_KEY_FILE);
        let damaged = |why: String| KeyError::Damaged {
            path: path.display().to_string(),
            why,
        };
        let existing = match std::fs::read(&path) {
            Ok(bytes) => Some(
                fabric_proto::from_cbor::<KeyringFile>(&bytes)
                    .map_err(|e| damaged(e.to_string()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&path)(e)),
        };
        let Some(file) = existing else {
            if !may_create {
                return Err(KeyError::NoKeyring {
                    path: path.display().to_string(),
                });
            }
            return match Self::create(dir, operator)? {
                Some(ring) => Ok(ring),
                // Another process made it first: open theirs.
                None => Self::open(dir, operator_key, false),
            };
        };
        let wrapping = match (file.wrap, operator) {
            (Wrap::Operator, None) => {
                return Err(KeyError::Missing {
                    fingerprint: file.fingerprint,
                });
            }
            (Wrap::Operator, Some(k)) => {
                if fingerprint(k) != file.fingerprint {
                    return Err(KeyError::Wrong {
                        expected: file.fingerprint,
                        given: fingerprint(k),
                    });
                }
                *k
            }
            (Wrap::Local, _) => read_local_key(&local_path)?,
        };
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in &file.keys {
            let key = unwrap_key(&wrapping, k)
                .ok_or_else(|| damaged(format!("data key {} does not unwrap", k.id)))?;
            keys.push((k.id, key));
        }
        if !keys.iter().any(|(id, _)| *id == file.active) {
            return Err(damaged(format!(
                "the active key {} is missing",
                file.active
            )));
        }
        let crypt = Crypt::new(&keys, file.active);
        let adopt = match (file.wrap, operator) {
            (Wrap::Local, Some(op)) => Some(*op),
            _ => None,
        };
        Ok(Self {
            path,
            inner: std::sync::Mutex::new(Inner { file, wrapping }),
            crypt,
            adopt,
        })
    }

    /// Called once the store is locked (no other process uses the
    /// keyring): when an operator key was given to a keyring the local key
    /// wraps, wraps the data keys with it and removes the local key; a
    /// local key left behind by a move cut short is removed too.
    pub(crate) fn finish_open(&self) -> Result<(), KeyError> {
        let local = self.path.with_file_name(LOCAL_KEY_FILE);
        if self.adopt.is_none() && self.state().wrap == Wrap::Operator && local.exists() {
            std::fs::remove_file(&local).map_err(io(&local))?;
        }
        let Some(op) = self.adopt else {
            return Ok(());
        };
        let mut inner = self.lock();
        if inner.file.wrap == Wrap::Operator {
            return Ok(());
        }
        let mut next = inner.file.clone();
        next.wrap = Wrap::Operator;
        next.fingerprint = fingerprint(&op);
        for k in &mut next.keys {
            let key = unwrap_key(&inner.wrapping, k).ok_or_else(|| KeyError::Damaged {
                path: self.path.display().to_string(),
                why: format!("data key {} does not unwrap", k.id),
            })?;
            k.sealed = wrap_key(&op, k.id, &key);
        }
        write_atomic(&self.path, &encode(&next))?;
        inner.file = next;
        inner.wrapping = op;
        if let Some(dir) = self.path.parent() {
            let local = dir.join(LOCAL_KEY_FILE);
            std::fs::remove_file(&local).map_err(io(&local))?;
        }
        tracing::info!(
            fingerprint = %fingerprint(&op),
            "the data keys are now wrapped by the operator's key; the key that sat beside the data was removed"
        );
        Ok(())
    }

    /// A new keyring; `None` when another process made one meanwhile
    /// (each file is linked into place only if absent: two dispatchers
    /// started at once on an empty dir never overwrite each other's).
    fn create(dir: &Path, operator: Option<&[u8; 32]>) -> Result<Option<Self>, KeyError> {
        let path = dir.join(KEYRING_FILE);
        let (wrap, wrapping) = match operator {
            Some(k) => (Wrap::Operator, *k),
            None => {
                let local = dir.join(LOCAL_KEY_FILE);
                write_new(&local, generate_key_hex().as_bytes())?;
                (Wrap::Local, read_local_key(&local)?)
            }
        };
        let mut data = [0u8; 32];
        OsRng.fill_bytes(&mut data);
        let file = KeyringFile {
            version: 1,
            wrap,
            fingerprint: fingerprint(&wrapping),
            active: 1,
            keys: vec![WrappedKey {
                id: 1,
                created_ms: now_ms(),
                sealed: wrap_key(&wrapping, 1, &data),
            }],
        };
        if !write_new(&path, &encode(&file))? {
            return Ok(None);
        }
        Ok(Some(Self {
            path,
            inner: std::sync::Mutex::new(Inner { file, wrapping }),
            crypt: Crypt::new(&[(1, data)], 1),
            adopt: None,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sealer over the keyring's keys.
    pub fn crypt(&self) -> &Arc<Crypt> {
        &self.crypt
    }

    /// What the keyring holds (no key material).
    pub fn state(&self) -> KeyState {
        let inner = self.lock();
        let file = &inner.file;
        KeyState {
            wrap: file.wrap,
            fingerprint: file.fingerprint.clone(),
            active: file.active,
            keys: file.keys.iter().map(|k| (k.id, k.created_ms)).collect(),
        }
    }

    /// Makes a new data key, writes it to the keyring (durably) and seals
    /// new values with it; the old keys stay for reading. Its id.
    pub fn rotate(&self) -> Result<u32, KeyError> {
        let mut inner = self.lock();
        let id = inner.file.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        let mut data = [0u8; 32];
        OsRng.fill_bytes(&mut data);
        let mut next = inner.file.clone();
        next.keys.push(WrappedKey {
            id,
            created_ms: now_ms(),
            sealed: wrap_key(&inner.wrapping, id, &data),
        });
        next.active = id;
        write_atomic(&self.path, &encode(&next))?;
        inner.file = next;
        self.crypt.add_active(id, &data);
        Ok(id)
    }
}

fn encode(file: &KeyringFile) -> Vec<u8> {
    fabric_proto::to_cbor(file).expect("a keyring always encodes")
}
