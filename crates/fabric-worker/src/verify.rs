//! What a worker checks before it runs anything, and why it refuses.

use std::collections::HashMap;

use fabric_proto::{Manifest, ManifestError, Sha256, Signed, TaskId, VerifyError, VerifyingKey};

/// Why a worker refused an assignment. Sent to the dispatcher as text; a
/// refusal is not a failure of the task (it goes elsewhere).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The signature or the signer's key did not check out.
    #[error("manifest rejected: {0}")]
    Signature(#[from] VerifyError),
    /// The manifest is expired, of another version, or names other bytes.
    #[error("manifest rejected: {0}")]
    Manifest(#[from] ManifestError),
    /// This manifest already ran here.
    #[error("manifest rejected: task {task} attempt {attempt} already ran here (replay)")]
    Replay {
        /// The task.
        task: TaskId,
        /// The attempt.
        attempt: u32,
    },
    /// The worker is shutting down.
    #[error("worker is draining")]
    Draining,
    /// The task is not a wasm task.
    #[error("this worker runs wasm tasks only")]
    NotWasm,
    /// The native program is not on this worker's allow-list.
    #[error("program {0:?} is not on this worker's allow-list")]
    NotAllowed(String),
    /// The module could not be fetched from the dispatcher.
    #[error("cannot fetch module {sha}: {reason}")]
    ModuleFetch {
        /// The module.
        sha: Sha256,
        /// Why.
        reason: String,
    },
    /// The task's input could not be fetched from the dispatcher.
    #[error("cannot fetch input {sha}: {reason}")]
    InputFetch {
        /// The input blob.
        sha: Sha256,
        /// Why.
        reason: String,
    },
    /// The module did not compile or link here.
    #[error("module {sha} does not load: {reason}")]
    ModuleLoad {
        /// The module.
        sha: Sha256,
        /// Why.
        reason: String,
    },
}

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
/// digest and replay. The module hash is checked when the module arrives,
/// and so is the input's when it comes as a blob (`input` is `None`).
pub fn verify_manifest(
    signed: &Signed<Manifest>,
    input: Option<&[u8]>,
    trusted: &[VerifyingKey],
    now_ms: u64,
    replay: &mut ReplayGuard,
) -> Result<Manifest, Refusal> {
    let m = signed.verify(trusted)?;
    m.check_current(now_ms)?;
    if let Some(input) = input {
        m.check_input(input)?;
    }
    if !replay.first_use(&m, now_ms) {
        return Err(Refusal::Replay {
            task: m.task_id,
            attempt: m.attempt,
        });
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
            trace: None,
            secrets: Vec::new(),
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
        verify_manifest(&s, Some(b"in"), &[k.verifying_key()], 10, &mut guard).unwrap();
        let err =
            verify_manifest(&s, Some(b"in"), &[k.verifying_key()], 10, &mut guard).unwrap_err();
        assert!(matches!(err, Refusal::Replay { attempt: 1, .. }), "{err}");
        assert!(err.to_string().contains("replay"), "{err}");
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let k = key(1);
        let mut guard = ReplayGuard::default();
        let s = Signed::sign(&k, &manifest(b"in", 100)).unwrap();
        let err = verify_manifest(&s, Some(b"in"), &[key(2).verifying_key()], 10, &mut guard)
            .unwrap_err()
            .to_string();
        assert!(err.contains("untrusted key"), "{err}");
        let err = verify_manifest(&s, Some(b"in"), &[k.verifying_key()], 100, &mut guard)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
        let err = verify_manifest(&s, Some(b"other"), &[k.verifying_key()], 10, &mut guard)
            .unwrap_err()
            .to_string();
        assert!(err.contains("input bytes hash"), "{err}");
        let mut tampered = s.clone();
        let last = tampered.body_mut().len() - 1;
        tampered.body_mut()[last] ^= 1;
        let err = verify_manifest(&tampered, Some(b"in"), &[k.verifying_key()], 10, &mut guard)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signature"), "{err}");
        let m = manifest(b"in", 100);
        let err = m.check_module(b"not the module").unwrap_err().to_string();
        assert!(err.contains("module bytes hash"), "{err}");
    }
}
