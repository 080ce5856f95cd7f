//! Sealed files: the chunked blobs (inputs, large args, staged and output
//! files) beside sled.
//!
//! A file is a 32-byte header (`FBSF`, the data key's id, a random 16-byte
//! file id, 8 reserved bytes) and then one sealed segment per
//! [`BLOB_CHUNK`] of plaintext: nonce (12), ciphertext, tag (16). Segment
//! `i` starts at `HEADER + i * SEGMENT`, so a range is read by opening
//! only the segments it covers, and a chunked upload's piece `i` is
//! segment `i`. The associated data is the file id and the segment's
//! index: segments cannot be moved within a file or between files.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

use fabric_proto::BLOB_CHUNK;
use rand_core::{OsRng, RngCore as _};

use super::{Crypt, OpenError, TAG};

/// The header's length.
pub(crate) const HEADER: u64 = 32;
/// A full segment's length on disk.
pub(crate) const SEGMENT: u64 = (12 + BLOB_CHUNK + TAG) as u64;
const MAGIC: &[u8; 4] = b"FBSF";

/// A sealed file's header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub key: u32,
    pub file_id: [u8; 16],
}

impl Header {
    /// A header for a new file sealed with the active key.
    pub(crate) fn new(crypt: &Crypt) -> Self {
        let mut file_id = [0u8; 16];
        OsRng.fill_bytes(&mut file_id);
        Self {
            key: crypt.active_id(),
            file_id,
        }
    }

    pub(crate) fn write(&self, file: &File) -> std::io::Result<()> {
        let mut h = [0u8; HEADER as usize];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&self.key.to_be_bytes());
        h[8..24].copy_from_slice(&self.file_id);
        file.write_all_at(&h, 0)
    }

    pub(crate) fn read(file: &File) -> std::io::Result<Self> {
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a sealed Fabric blob file",
                )
            } else {
                e
            }
        })?;
        if &h[..4] != MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a sealed Fabric blob file",
            ));
        }
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&h[8..24]);
        Ok(Self {
            key: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            file_id,
        })
    }

    fn aad(&self, index: u64) -> [u8; 24] {
        let mut a = [0u8; 24];
        a[..16].copy_from_slice(&self.file_id);
        a[16..].copy_from_slice(&index.to_be_bytes());
        a
    }
}

fn invalid(e: OpenError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// The on-disk length of a file holding `plain` bytes.
pub(crate) fn sealed_len(plain: u64) -> u64 {
    let step = BLOB_CHUNK as u64;
    let full = plain / step;
    let rest = plain % step;
    HEADER + full * SEGMENT + if rest > 0 { 12 + rest + TAG as u64 } else { 0 }
}

/// How many whole, full-size segments a file of `len` bytes on disk holds.
pub(crate) fn full_segments(len: u64) -> u64 {
    len.saturating_sub(HEADER) / SEGMENT
}

/// Seals `plain` as segment `index` and writes it in place.
pub(crate) fn write_segment(
    crypt: &Crypt,
    file: &File,
    header: &Header,
    index: u64,
    plain: &[u8],
) -> std::io::Result<()> {
    debug_assert!(plain.len() <= BLOB_CHUNK);
    let sealed = crypt
        .seal_segment(header.key, &header.aad(index), plain)
        .map_err(invalid)?;
    file.write_all_at(&sealed, HEADER + index * SEGMENT)
}

/// Opens segment `index` of a file of `total` plaintext bytes.
pub(crate) fn read_segment(
    crypt: &Crypt,
    file: &File,
    header: &Header,
    index: u64,
    total: u64,
) -> std::io::Result<Vec<u8>> {
    let step = BLOB_CHUNK as u64;
    let plain = total.saturating_sub(index * step).min(step);
    let mut sealed = vec![0u8; (12 + plain) as usize + TAG];
    file.read_exact_at(&mut sealed, HEADER + index * SEGMENT)?;
    crypt
        .open_segment(header.key, &header.aad(index), &sealed)
        .map_err(invalid)
}

/// Writes `bytes` as a new sealed file.
pub(crate) fn write_all(crypt: &Crypt, file: &File, bytes: &[u8]) -> std::io::Result<()> {
    let header = Header::new(crypt);
    header.write(file)?;
    for (i, piece) in bytes.chunks(BLOB_CHUNK).enumerate() {
        write_segment(crypt, file, &header, i as u64, piece)?;
    }
    Ok(())
}

/// Up to `len` plaintext bytes from `offset` of a file of `total` bytes.
pub(crate) fn read_range(
    crypt: &Crypt,
    file: &File,
    offset: u64,
    len: u64,
    total: u64,
) -> std::io::Result<Vec<u8>> {
    let end = offset.saturating_add(len).min(total);
    if offset >= end {
        return Ok(Vec::new());
    }
    let header = Header::read(file)?;
    let step = BLOB_CHUNK as u64;
    let mut out = Vec::with_capacity((end - offset) as usize);
    for index in offset / step..end.div_ceil(step) {
        let seg = read_segment(crypt, file, &header, index, total)?;
        let seg_start = index * step;
        let from = offset.saturating_sub(seg_start) as usize;
        let to = ((end - seg_start) as usize).min(seg.len());
        out.extend_from_slice(&seg[from..to]);
    }
    Ok(out)
}

/// Calls `f` with each plaintext segment of a file of `total` bytes, in
/// order.
pub(crate) fn for_each_segment(
    crypt: &Crypt,
    file: &File,
    total: u64,
    mut f: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let header = Header::read(file)?;
    for index in 0..total.div_ceil(BLOB_CHUNK as u64) {
        f(&read_segment(crypt, file, &header, index, total)?)?;
    }
    Ok(())
}
