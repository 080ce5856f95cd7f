//! `Signed<T>`: a CBOR-encoded value with an ed25519 signature over exactly
//! those bytes.
//!
//! The signature covers a domain-separation prefix plus the body bytes as they
//! travel, so a verifier never re-encodes and two encoders can never disagree
//! about what was signed. Verification checks the signer against the caller's
//! pinned keys first, then the signature (strict: no malleable signatures),
//! and only then decodes the body.

use std::marker::PhantomData;

use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::codec::{CodecError, from_cbor, to_cbor};

/// Prefix mixed into every signature so a Fabric signature can never be
/// replayed as a signature over some other protocol's bytes.
const DOMAIN: &[u8] = b"fabric/1 signed\0";

/// A value of type `T` signed by an ed25519 key.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signer: [u8; 32],
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
    #[serde(skip)]
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self {
            body: self.body.clone(),
            signer: self.signer,
            signature: self.signature,
            _value: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("signer", &hex::encode(self.signer))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A value could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign value")]
pub struct SignError(#[from] CodecError);

/// A signed value did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signer's key is not one the verifier pinned.
    #[error("signed by untrusted key {0}")]
    UntrustedSigner(String),
    /// The signer's public key bytes are not a valid ed25519 point.
    #[error("signer key is not a valid ed25519 public key")]
    BadSignerKey,
    /// The signature does not match the body.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature is valid but the body is not a valid `T`.
    #[error("signed body is malformed")]
    Body(#[source] CodecError),
}

impl<T: Serialize + DeserializeOwned> Signed<T> {
    /// Encodes `value` and signs it with `key`.
    pub fn sign(key: &SigningKey, value: &T) -> Result<Self, SignError> {
        let body = to_cbor(value)?;
        let signature = key.sign(&signed_bytes(&body)).to_bytes();
        Ok(Self {
            body,
            signer: key.verifying_key().to_bytes(),
            signature,
            _value: PhantomData,
        })
    }

    /// Checks that a key in `trusted` signed these bytes, then decodes them.
    pub fn verify(&self, trusted: &[VerifyingKey]) -> Result<T, VerifyError> {
        // The trusted key itself, already decompressed: decompressing the
        // signer's bytes again on every verify showed in the profile of a
        // trivial task (BENCHMARKS.md, issue 27).
        let Some(key) = trusted.iter().find(|k| k.as_bytes() == &self.signer) else {
            return Err(VerifyError::UntrustedSigner(hex::encode(self.signer)));
        };
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&signed_bytes(&self.body), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        from_cbor(&self.body).map_err(VerifyError::Body)
    }

    /// The public key that claims to have signed this (unverified).
    pub fn signer(&self) -> [u8; 32] {
        self.signer
    }

    /// The signed body bytes (for tests and fuzzing of the verifier).
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// The raw signature bytes (for tests and fuzzing of the verifier).
    pub fn signature_mut(&mut self) -> &mut [u8; 64] {
        &mut self.signature
    }
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + body.len());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand_core::OsRng;

    use super::*;
    use crate::Manifest;
    use crate::manifest::tests::sample;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_verify_round_trip() {
        let k = SigningKey::generate(&mut OsRng);
        let m = sample(b"mod");
        let s = Signed::sign(&k, &m).unwrap();
        assert_eq!(s.verify(&[k.verifying_key()]).unwrap(), m);
        // Through the wire encoding as well.
        let wire = to_cbor(&s).unwrap();
        let back: Signed<Manifest> = from_cbor(&wire).unwrap();
        assert_eq!(back.verify(&[k.verifying_key()]).unwrap(), m);
    }

    #[test]
    fn untrusted_signer_is_refused() {
        let s = Signed::sign(&key(1), &sample(b"m")).unwrap();
        let err = s.verify(&[key(2).verifying_key()]).unwrap_err();
        assert!(matches!(err, VerifyError::UntrustedSigner(_)), "{err}");
    }

    #[test]
    fn signer_swapped_for_trusted_key_fails_signature() {
        let mut s = Signed::sign(&key(1), &sample(b"m")).unwrap();
        s.signer = key(2).verifying_key().to_bytes();
        assert!(matches!(
            s.verify(&[key(2).verifying_key()]),
            Err(VerifyError::BadSignature)
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn flipping_any_body_bit_fails(idx in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key(7);
            let mut s = Signed::sign(&k, &sample(b"m")).unwrap();
            let i = idx.index(s.body.len());
            s.body_mut()[i] ^= 1 << bit;
            prop_assert!(matches!(s.verify(&[k.verifying_key()]), Err(VerifyError::BadSignature)));
        }

        #[test]
        fn flipping_any_signature_bit_fails(i in 0usize..64, bit in 0u8..8) {
            let k = key(7);
            let mut s = Signed::sign(&k, &sample(b"m")).unwrap();
            s.signature_mut()[i] ^= 1 << bit;
            prop_assert!(s.verify(&[k.verifying_key()]).is_err());
        }

        #[test]
        fn any_args_and_env_round_trip(
            args in prop::collection::vec(".{0,20}", 0..8),
            env in prop::collection::vec(("[A-Z_]{1,8}", ".{0,16}"), 0..8),
            attempt in 1u32..100,
        ) {
            let k = key(3);
            let mut m = sample(b"m");
            m.args = args;
            m.env = env;
            m.attempt = attempt;
            let s = Signed::sign(&k, &m).unwrap();
            let wire = to_cbor(&s).unwrap();
            let back: Signed<Manifest> = from_cbor(&wire).unwrap();
            prop_assert_eq!(back.verify(&[k.verifying_key()]).unwrap(), m);
        }
    }
}
