//! The task manifest: what a dispatcher signs and a worker checks before it
//! runs anything.

use serde::{Deserialize, Serialize};

use crate::{Limits, Sha256, TaskId, TaskKind};

/// Everything a worker needs to run one attempt of a task, signed by the
/// dispatcher as a [`crate::Signed<Manifest>`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version; a worker refuses versions it does not know.
    pub version: u16,
    /// The task.
    pub task_id: TaskId,
    /// Attempt number, from 1. Task id + attempt is unique; a worker refuses
    /// to run the same pair twice.
    pub attempt: u32,
    /// What to run.
    pub kind: TaskKind,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment given to the task.
    pub env: Vec<(String, String)>,
    /// SHA-256 of the task's stdin bytes.
    pub input_digest: Sha256,
    /// Resource limits.
    pub limits: Limits,
    /// When the dispatcher signed it (ms since the Unix epoch).
    pub issued_at_ms: u64,
    /// After this instant (ms since the Unix epoch) the manifest is void.
    pub expires_at_ms: u64,
    /// The task's correlation id, for the worker's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Secrets, given to the task as env; the worker keeps them in memory
    /// only (see [`crate::SecretValue`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: crate::Secrets,
}

impl Manifest {
    /// The manifest format this build writes and accepts.
    pub const VERSION: u16 = 1;

    /// Checks what can be checked without the module: version and expiry.
    pub fn check_current(&self, now_ms: u64) -> Result<(), ManifestError> {
        if self.version != Self::VERSION {
            return Err(ManifestError::Version {
                found: self.version,
            });
        }
        if now_ms >= self.expires_at_ms {
            return Err(ManifestError::Expired {
                expired_at_ms: self.expires_at_ms,
                now_ms,
            });
        }
        Ok(())
    }

    /// Checks that `module` is the module this manifest names.
    pub fn check_module(&self, module: &[u8]) -> Result<(), ManifestError> {
        let TaskKind::Wasm { module: expected } = &self.kind else {
            return Err(ManifestError::NotWasm);
        };
        let actual = Sha256::of(module);
        if actual != *expected {
            return Err(ManifestError::ModuleMismatch {
                expected: *expected,
                actual,
            });
        }
        Ok(())
    }

    /// Checks that `input` is the input this manifest names.
    pub fn check_input(&self, input: &[u8]) -> Result<(), ManifestError> {
        let actual = Sha256::of(input);
        if actual != self.input_digest {
            return Err(ManifestError::InputMismatch {
                expected: self.input_digest,
                actual,
            });
        }
        Ok(())
    }
}

/// A manifest does not allow the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest's format version is not one this build knows.
    #[error(
        "unsupported manifest version {found} (this build speaks {})",
        Manifest::VERSION
    )]
    Version {
        /// The version found.
        found: u16,
    },
    /// The manifest's expiry has passed.
    #[error("manifest expired at {expired_at_ms} ms (now {now_ms} ms)")]
    Expired {
        /// Its expiry.
        expired_at_ms: u64,
        /// The checker's clock.
        now_ms: u64,
    },
    /// A module was offered for a manifest that is not a wasm task.
    #[error("manifest is not for a wasm task")]
    NotWasm,
    /// The module bytes do not hash to the digest the manifest names.
    #[error("module bytes hash to {actual}, manifest names {expected}")]
    ModuleMismatch {
        /// Digest in the manifest.
        expected: Sha256,
        /// Digest of the bytes received.
        actual: Sha256,
    },
    /// The input bytes do not hash to the digest the manifest names.
    #[error("input bytes hash to {actual}, manifest names {expected}")]
    InputMismatch {
        /// Digest in the manifest.
        expected: Sha256,
        /// Digest of the bytes received.
        actual: Sha256,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(module: &[u8]) -> Manifest {
        Manifest {
            version: Manifest::VERSION,
            task_id: TaskId::new(),
            attempt: 1,
            kind: TaskKind::Wasm {
                module: Sha256::of(module),
            },
            args: vec!["--n".into(), "5".into()],
            env: vec![("K".into(), "V".into())],
            input_digest: Sha256::of(b"input"),
            limits: Limits::default(),
            issued_at_ms: 1_000,
            expires_at_ms: 2_000,
            trace: None,
            secrets: Vec::new(),
        }
    }

    #[test]
    fn expiry_hash_and_version_are_checked() {
        let m = sample(b"module");
        m.check_current(1_999).unwrap();
        assert!(matches!(
            m.check_current(2_000),
            Err(ManifestError::Expired { .. })
        ));
        m.check_module(b"module").unwrap();
        assert!(matches!(
            m.check_module(b"other"),
            Err(ManifestError::ModuleMismatch { .. })
        ));
        m.check_input(b"input").unwrap();
        assert!(m.check_input(b"inpuT").is_err());
        let old = Manifest { version: 0, ..m };
        assert!(matches!(
            old.check_current(0),
            Err(ManifestError::Version { found: 0 })
        ));
    }
}
