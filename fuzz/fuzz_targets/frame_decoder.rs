//! Arbitrary bytes, fed in arbitrary chunks, through the frame decoder and
//! the manifest decoder/verifier: nothing may panic, and nothing forged may
//! verify.
#![no_main]

use fabric_proto::{FrameDecoder, Manifest, Signed, SigningKey, from_cbor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let trusted = [SigningKey::from_bytes(&[7; 32]).verifying_key()];
    let mut decoder = FrameDecoder::new(1 << 16);
    for piece in rest.chunks(chunk) {
        if decoder.handle_bytes(piece).is_err() {
            return;
        }
        while let Ok(Some(body)) = decoder.poll_frame() {
            if let Ok(signed) = from_cbor::<Signed<Manifest>>(&body) {
                assert!(signed.verify(&trusted).is_err(), "forged manifest verified");
            }
        }
    }
});
