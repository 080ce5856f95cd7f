//! Tasks' args and env over [`INLINE_ARGS_MAX`] bytes, kept as a chunked
//! blob (the CBOR of `(args, env)`) beside the inputs rather than in the
//! task record, which names it (`TaskRecord::args_blob`). The record is
//! rewritten at every state change and the scheduler holds every
//! unfinished one in memory: 8,000 queued tasks with 63 KiB of args took
//! the dispatcher to 679 MiB, and to 1,094 MiB after a restart (issue 20,
//! item 11). Blobs are content addressed, so tasks with the same args
//! share one.

use fabric_proto::BlobRef;

use crate::{Result, Store, StoreError};

/// Bytes of args plus env (as admission counts them) a task record carries
/// itself; more go to a blob.
pub const INLINE_ARGS_MAX: usize = 1 << 10;

/// A task's args and env.
pub type TaskArgs = (Vec<String>, Vec<(String, String)>);

impl Store {
    /// Stores a task's args and env as a blob; its reference.
    pub fn put_args(&self, args: &[String], env: &[(String, String)]) -> Result<BlobRef> {
        // Plain CBOR: the blob file it goes to is sealed.
        let bytes = fabric_proto::to_cbor(&(args, env)).map_err(|source| StoreError::Encode {
            what: "task args",
            source,
        })?;
        self.put_chunked(&bytes)
    }

    /// The args and env stored as `blob`; `None` when it is not stored.
    pub fn args(&self, blob: &BlobRef) -> Result<Option<TaskArgs>> {
        match self.blob_range(&blob.sha, 0, blob.len)? {
            Some((bytes, _)) => Ok(Some(fabric_proto::from_cbor(&bytes).map_err(|source| {
                StoreError::Corrupt {
                    what: "task args",
                    source,
                }
            })?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::temp_store;

    #[test]
    fn args_round_trip_through_a_blob_shared_by_equal_args() {
        let (_dir, store) = temp_store();
        let args = vec!["--big".to_owned(), "x".repeat(4000)];
        let env = vec![("K".to_owned(), "v".repeat(3000))];
        let blob = store.put_args(&args, &env).unwrap();
        assert_eq!(
            store.args(&blob).unwrap(),
            Some((args.clone(), env.clone()))
        );
        assert_eq!(
            store.put_args(&args, &env).unwrap(),
            blob,
            "content addressed"
        );
        let other = store.put_args(&args[..1], &env).unwrap();
        assert_ne!(other, blob);
    }

    #[test]
    fn args_not_stored_are_none() {
        let (_dir, store) = temp_store();
        let blob = fabric_proto::BlobRef::of(b"never stored");
        assert_eq!(store.args(&blob).unwrap(), None);
    }
}
