//! What a worker checks before it runs anything.

use std::collections::HashMap;

use fabric_proto::{Manifest, Signed, TaskId, VerifyingKey};

/// Remembers which manifests ran here (task, attempt and signing instant:
/// a replayed manifest repeats all three) until they expire; an expired
/// manifest is refused anyway, so that is long enough.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<(TaskId, u32, u64), u64>,
    next_prune_ms: u64,
}

impl ReplayGuard {
    /// Marks a manifest as run; false if it already was.
    pub fn first_use(&mut self, m: &Manifest, now_ms: u64) -> bool {
        // Forget expired entries about once a second, not on every call.
        if now_ms >= self.next_prune_ms {
            self.seen.retain(|_, exp| *exp > now_ms);
            self.next_prune_ms = now_ms + 1_000;
        }
        match self.seen.entry((m.task_id, m.attempt, m.issued_at_ms)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(m.expires_at_ms);
                true
            }
        }
    }
}

/// Checks signature (by a pinned dispatcher key), version, expiry, input
/// digest and replay. The module hash is checked when the module arrives.
pub fn verify_manifest(
    signed: &Signed<Manifest>,
    input: &[u8],
    trusted: &[VerifyingKey],
    now_ms: u64,
    replay: &mut ReplayGuard,
) -> Result<Manifest, String> {
    let m = signed
        .verify(trusted)
        .map_err(|e| format!("manifest rejected: {e}"))?;
    m.check_current(now_ms)
        .map_err(|e| format!("manifest rejected: {e}"))?;
    m.check_input(input)
        .map_err(|e| format!("manifest rejected: {e}"))?;
    if !replay.first_use(&m, now_ms) {
        return Err(format!(
            "manifest rejected: task {} attempt {} already ran here (replay)",
            m.task_id, m.attempt
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use fabric_proto::{Limits, Sha256, SigningKey, TaskKind};

    use super::*;

    fn manifest(input: &[u8], expires: u64) -> Manifest {
        Manifest {
            version: Manifest::VERSION,
            task_id: TaskId::new(),
            attempt: 1,
            kind: TaskKind::Wasm {
                module: Sha256::of(b"module"),
            },
            args: vec![],
            env: vec![],
            input_digest: Sha256::of(input),
            limits: Limits::default(),
            issued_at_ms: 0,
            expires_at_ms: expires,
        }
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let mut guard = ReplayGuard::default();
        let m = manifest(b"", 100);
        assert!(guard.first_use(&m, 10));
        assert!(!guard.first_use(&m, 20));
        // Past its expiry (and a prune), the entry is gone; such a manifest
        // is refused as expired before the guard is asked.
        assert!(guard.first_use(&manifest(b"", 5_000), 2_000));
        assert_eq!(guard.seen.len(), 1);
    }

    #[test]
    fn good_manifest_passes_once() {
        let k = key(1);
        let s = Signed::sign(&k, &manifest(b"in", 100)).unwrap();
        let mut guard = ReplayGuard::default();
        verify_manifest(&s, b"in", &[k.verifying_key()], 10, &mut guard).unwrap();
        let err = verify_manifest(&s, b"in", &[k.verifying_key()], 10, &mut guard).unwrap_err();
        assert!(err.contains("replay"), "{err}");
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let k = key(1);
        let mut guard = ReplayGuard::default();
        let s = Signed::sign(&k, &manifest(b"in", 100)).unwrap();
        let err =
            verify_manifest(&s, b"in", &[key(2).verifying_key()], 10, &mut guard).unwrap_err();
        assert!(err.contains("untrusted key"), "{err}");
        let err = verify_manifest(&s, b"in", &[k.verifying_key()], 100, &mut guard).unwrap_err();
        assert!(err.contains("expired"), "{err}");
        let err = verify_manifest(&s, b"other", &[k.verifying_key()], 10, &mut guard).unwrap_err();
        assert!(err.contains("input bytes hash"), "{err}");
        let mut tampered = s.clone();
        let last = tampered.body_mut().len() - 1;
        tampered.body_mut()[last] ^= 1;
        let err =
            verify_manifest(&tampered, b"in", &[k.verifying_key()], 10, &mut guard).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        let m = manifest(b"in", 100);
        let err = m.check_module(b"not the module").unwrap_err().to_string();
        assert!(err.contains("module bytes hash"), "{err}");
    }
}
