//! Mutations of a genuinely signed manifest: any change to the wire bytes
//! either fails to decode, fails to verify, or verifies to the original.
#![no_main]

use fabric_proto::{
    Limits, Manifest, Sha256, Signed, SigningKey, TaskId, TaskKind, from_cbor, to_cbor,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|edits: Vec<(u16, u8)>| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let manifest = Manifest {
        version: Manifest::VERSION,
        task_id: TaskId::from_bytes([1; 16]),
        attempt: 1,
        kind: TaskKind::Wasm {
            module: Sha256::of(b"module"),
        },
        args: vec!["a".into()],
        env: vec![("K".into(), "V".into())],
        input_digest: Sha256::of(b""),
        limits: Limits::default(),
        issued_at_ms: 1,
        expires_at_ms: 2,
        trace: None,
    };
    let mut wire = to_cbor(&Signed::sign(&key, &manifest).unwrap()).unwrap();
    for (at, xor) in edits {
        let i = usize::from(at) % wire.len();
        wire[i] ^= xor;
    }
    if let Ok(signed) = from_cbor::<Signed<Manifest>>(&wire) {
        if let Ok(back) = signed.verify(&[key.verifying_key()]) {
            assert_eq!(back, manifest, "a tampered manifest verified");
        }
    }
});
