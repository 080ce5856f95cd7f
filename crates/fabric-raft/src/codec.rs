//! CBOR for what the Raft layer keeps in the store, and its errors in
//! openraft's terms.

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StorageError;

/// A store or codec failure as openraft's error about `subject`.
pub(crate) fn io_error(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

pub(crate) fn enc<T: Serialize>(
    subject: ErrorSubject<u64>,
    v: &T,
) -> Result<Vec<u8>, StorageError> {
    fabric_proto::to_cbor(v).map_err(|e| io_error(subject, ErrorVerb::Write, e))
}

pub(crate) fn dec<T: DeserializeOwned>(
    subject: ErrorSubject<u64>,
    b: &[u8],
) -> Result<T, StorageError> {
    fabric_proto::from_cbor(b).map_err(|e| io_error(subject, ErrorVerb::Read, e))
}

/// Reads a value of the Raft state kept in the store.
pub(crate) fn get_meta<T: DeserializeOwned>(
    store: &fabric_store::Store,
    name: &str,
    subject: ErrorSubject<u64>,
) -> Result<Option<T>, StorageError> {
    match store
        .raft_meta(name)
        .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?
    {
        Some(b) => dec(subject, &b).map(Some),
        None => Ok(None),
    }
}

/// Writes a value of the Raft state kept in the store (not yet durable).
pub(crate) fn put_meta<T: Serialize>(
    store: &fabric_store::Store,
    name: &str,
    subject: ErrorSubject<u64>,
    v: &T,
) -> Result<(), StorageError> {
    let b = enc(subject.clone(), v)?;
    store
        .set_raft_meta(name, Some(&b))
        .map_err(|e| io_error(subject, ErrorVerb::Write, e))
}
