//! Secrets: env a task gets that is never shown, logged or kept.
//!
//! A secret reaches the task as an environment variable. Its value travels
//! in the signed manifest (over QUIC) and is sealed in the dispatcher's
//! store like the rest of the task, which drops it once the task ends;
//! views (status, REST, the dashboard, the event stream) carry the names
//! only, and `Debug` of a value prints `<secret>`, so a log line at any
//! level cannot carry it.

use serde::{Deserialize, Serialize};

use crate::env::{EnvError, check_args_env};

/// The most secrets one task may carry.
pub const MAX_SECRETS: usize = 64;
/// The most bytes of secret names and values one task may carry.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// A secret's value. `Debug` never prints it; `expose` is the one way to
/// read it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the task's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// A task's secrets: name and value.
pub type Secrets = Vec<(String, SecretValue)>;

/// Why a task's secrets are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// A name is not a usable env name.
    #[error("secret {0}")]
    Env(EnvError),
    /// Two secrets, or a secret and an env variable, share a name.
    #[error("secret {0} is given twice (or is also in the task's env)")]
    Duplicate(String),
    /// Too many or too large.
    #[error(
        "a task may carry at most {MAX_SECRETS} secrets of {MAX_SECRET_BYTES} bytes in all; this one has {count} of {bytes} bytes"
    )]
    TooMany {
        /// How many.
        count: usize,
        /// Their bytes.
        bytes: usize,
    },
}

/// Checks a task's secrets against its env: names as env names must be,
/// no repeats, within the bounds.
pub fn check_secrets(secrets: &Secrets, env: &[(String, String)]) -> Result<(), SecretError> {
    let bytes: usize = secrets.iter().map(|(k, v)| k.len() + v.0.len()).sum();
    if secrets.len() > MAX_SECRETS || bytes > MAX_SECRET_BYTES {
        return Err(SecretError::TooMany {
            count: secrets.len(),
            bytes,
        });
    }
    let pairs: Vec<(String, String)> = secrets
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if v.0.contains('\0') { "\0" } else { "" }.to_owned(),
            )
        })
        .collect();
    check_args_env(&[], &pairs).map_err(SecretError::Env)?;
    let mut seen = std::collections::HashSet::new();
    for (k, _) in secrets {
        if !seen.insert(k.as_str()) || env.iter().any(|(e, _)| e == k) {
            return Err(SecretError::Duplicate(k.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> (String, SecretValue) {
        (k.to_owned(), SecretValue::new(v))
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secrets = vec![s("API_TOKEN", "hunter2")];
        let shown = format!("{secrets:?} {:#?}", secrets[0].1);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("API_TOKEN"));
    }

    #[test]
    fn secrets_travel_as_plain_strings() {
        let v = SecretValue::new("x");
        let cbor = crate::to_cbor(&v).unwrap();
        assert_eq!(crate::from_cbor::<String>(&cbor).unwrap(), "x");
    }

    #[test]
    fn bad_secrets_are_refused_in_their_own_terms() {
        let env = vec![("HOME".to_owned(), "/".to_owned())];
        assert_eq!(check_secrets(&vec![s("A", "1"), s("B", "2")], &env), Ok(()));
        assert!(matches!(
            check_secrets(&vec![s("LD_PRELOAD", "x")], &env),
            Err(SecretError::Env(EnvError::Unsafe(_)))
        ));
        assert!(matches!(
            check_secrets(&vec![s("A=B", "x")], &env),
            Err(SecretError::Env(EnvError::BadName(_)))
        ));
        assert!(matches!(
            check_secrets(&vec![s("A", "x\0y")], &env),
            Err(SecretError::Env(EnvError::NulInValue(_)))
        ));
        assert_eq!(
            check_secrets(&vec![s("A", "1"), s("A", "2")], &env),
            Err(SecretError::Duplicate("A".into()))
        );
        assert_eq!(
            check_secrets(&vec![s("HOME", "1")], &env),
            Err(SecretError::Duplicate("HOME".into()))
        );
        let many: Secrets = (0..65).map(|i| s(&format!("S{i}"), "v")).collect();
        assert!(matches!(
            check_secrets(&many, &[]),
            Err(SecretError::TooMany { count: 65, .. })
        ));
    }
}
