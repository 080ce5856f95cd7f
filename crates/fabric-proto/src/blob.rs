//! Content-addressed blobs that are too big for one frame: task inputs over
//! [`INLINE_INPUT_MAX`] are uploaded and fetched in [`BLOB_CHUNK`]-sized
//! pieces and named by a [`BlobRef`], so the scheduler holds a digest and a
//! length, never the bytes (issue 9, item 5).

use serde::{Deserialize, Serialize};

use crate::Sha256;

/// Largest input a task spec carries inline; bigger inputs travel as a blob
/// and the spec names it with [`crate::TaskSpec::input_blob`].
pub const INLINE_INPUT_MAX: usize = 4 << 10;

/// The largest task input a dispatcher admits unless configured otherwise
/// (and what `fabric exec` takes): 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 << 20;

/// Size of one piece of a chunked blob upload or download. Every piece but
/// the last is exactly this long and starts at a multiple of it, so a blob
/// has one layout whoever uploads it.
pub const BLOB_CHUNK: usize = 1 << 20;

/// A stored blob by digest and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// SHA-256 of the bytes.
    pub sha: Sha256,
    /// Their length.
    pub len: u64,
}

impl BlobRef {
    /// The reference for `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            sha: Sha256::of(bytes),
            len: bytes.len() as u64,
        }
    }

    /// The `(offset, len)` of each piece, in order ([`BLOB_CHUNK`] apart).
    pub fn chunks(&self) -> impl Iterator<Item = (u64, u64)> + use<> {
        let total = self.len;
        let step = BLOB_CHUNK as u64;
        (0..total.div_ceil(step)).map(move |i| (i * step, step.min(total - i * step)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_blob_once() {
        let r = BlobRef {
            sha: Sha256::of(b""),
            len: 2 * BLOB_CHUNK as u64 + 5,
        };
        let c: Vec<_> = r.chunks().collect();
        assert_eq!(
            c,
            vec![
                (0, BLOB_CHUNK as u64),
                (BLOB_CHUNK as u64, BLOB_CHUNK as u64),
                (2 * BLOB_CHUNK as u64, 5)
            ]
        );
        assert_eq!(BlobRef { len: 0, ..r }.chunks().count(), 0);
        let exact = BlobRef {
            len: BLOB_CHUNK as u64,
            ..r
        };
        assert_eq!(
            exact.chunks().collect::<Vec<_>>(),
            vec![(0, BLOB_CHUNK as u64)]
        );
    }

    #[test]
    fn reference_names_digest_and_length() {
        let r = BlobRef::of(b"abc");
        assert_eq!(r.sha, Sha256::of(b"abc"));
        assert_eq!(r.len, 3);
        let back: BlobRef = crate::from_cbor(&crate::to_cbor(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
