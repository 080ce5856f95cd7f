//! Round trips and version handling of the wire messages.

use super::*;
use crate::to_cbor;

#[test]
fn round_trip() {
    let bytes = encode_msg(&Request::Workers).unwrap();
    assert!(matches!(
        decode_msg::<Request>(&bytes).unwrap(),
        Request::Workers
    ));
}

#[test]
fn chunk_messages_round_trip() {
    let sha = Sha256::of(b"blob");
    let bytes = encode_msg(&Request::PutBlobChunk {
        sha,
        offset: crate::BLOB_CHUNK as u64,
        bytes: vec![1, 2, 3],
        last: true,
    })
    .unwrap();
    match decode_msg::<Request>(&bytes).unwrap() {
        Request::PutBlobChunk {
            sha: s,
            offset,
            bytes,
            last,
        } => {
            assert_eq!(
                (s, offset, bytes, last),
                (sha, 1 << 20, vec![1, 2, 3], true)
            );
        }
        other => panic!("{other:?}"),
    }
    let bytes = encode_msg(&Request::GetBlobRange {
        sha,
        offset: 5,
        len: 9,
    })
    .unwrap();
    assert!(matches!(
        decode_msg::<Request>(&bytes).unwrap(),
        Request::GetBlobRange {
            offset: 5,
            len: 9,
            ..
        }
    ));
    let bytes = encode_msg(&Response::BlobRange {
        total: 10,
        bytes: vec![0; 4],
    })
    .unwrap();
    assert!(matches!(
        decode_msg::<Response>(&bytes).unwrap(),
        Response::BlobRange { total: 10, bytes } if bytes.len() == 4
    ));
    let body = ErrorBody::new(ErrorCode::QueueFull, "full");
    let bytes = encode_msg(&Response::Error(body.clone())).unwrap();
    assert!(matches!(
        decode_msg::<Response>(&bytes).unwrap(),
        Response::Error(b) if b == body
    ));
    assert_eq!(ErrorCode::QueueFull.as_str(), "queue_full");
}

#[test]
fn other_version_is_unsupported_not_malformed() {
    let bytes = to_cbor(&Envelope {
        v: 9,
        msg: "something new",
    })
    .unwrap();
    assert!(matches!(
        decode_msg::<Request>(&bytes),
        Err(WireError::Unsupported(9))
    ));
}

#[test]
fn garbage_is_malformed() {
    assert!(matches!(
        decode_msg::<Request>(b"\xff\x00garbage"),
        Err(WireError::Malformed(_))
    ));
    let unknown = to_cbor(&Envelope {
        v: WIRE_VERSION,
        msg: "no_such_request",
    })
    .unwrap();
    assert!(matches!(
        decode_msg::<Request>(&unknown),
        Err(WireError::Malformed(_))
    ));
}
