//! Node identities: ed25519 keys on disk and the certificates made from them.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use fabric_proto::{SigningKey, VerifyingKey};
use rand_core::OsRng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("key file {path} is not a Fabric key (expected 64 hex characters)")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Cert(String),
}

/// A node's ed25519 identity and its self-signed certificate.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    cert: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public())
    }
}

impl Identity {
    /// Wraps a signing key.
    pub fn from_key(key: SigningKey) -> Result<Self, IdentityError> {
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| IdentityError::Cert(e.to_string()))?
            .as_bytes()
            .to_vec();
        let der = PrivatePkcs8KeyDer::from(pkcs8.clone());
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
            .map_err(|e| IdentityError::Cert(e.to_string()))?;
        let params = rcgen::CertificateParams::new(vec!["fabric".to_owned()])
            .map_err(|e| IdentityError::Cert(e.to_string()))?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| IdentityError::Cert(e.to_string()))?;
        Ok(Self {
            key,
            cert: cert.der().clone(),
            pkcs8,
        })
    }

    /// A fresh random identity (not saved).
    pub fn generate() -> Result<Self, IdentityError> {
        Self::from_key(SigningKey::generate(&mut OsRng))
    }

    /// Loads the key at `path`, creating it (mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = parse_secret(text.trim()).ok_or_else(|| IdentityError::Malformed {
                    path: path.to_owned(),
                })?;
                Self::from_key(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate()?;
                // A directory made here is private; an existing one is the
                // caller's to choose.
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    create_private_dir(dir).map_err(io)?;
                }
                write_private(path, &id.secret_hex()).map_err(io)?;
                tracing::info!(path = %path.display(), key = %id.public(), "created identity");
                Ok(id)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Parses a secret key in hex (as stored in key and profile files).
    pub fn from_secret_hex(text: &str) -> Option<Self> {
        Self::from_key(parse_secret(text.trim())?).ok()
    }

    /// The secret key in hex.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The certificate QUIC presents.
    pub fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    /// The private key in the form rustls takes.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

fn parse_secret(text: &str) -> Option<SigningKey> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

/// Creates `dir` and its missing parents owner-only (mode 0700), and makes
/// `dir` itself 0700 if it already existed: data dirs hold keys and the
/// store. Existing parents are left as they are.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `text` (plus a newline) to `path` with mode 0600, atomically:
/// key files, tokens and profiles go through here.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// An ed25519 public key, shown and parsed as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub VerifyingKey);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// From raw bytes, if they are a valid point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        VerifyingKey::from_bytes(bytes).ok().map(Self)
    }

    /// A short form for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.to_bytes()[..6])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

/// A string is not a public key.
#[derive(Debug, thiserror::Error)]
#[error("invalid public key {0:?}: expected 64 hex characters of an ed25519 key")]
pub struct PublicKeyParseError(String);

impl FromStr for PublicKey {
    type Err = PublicKeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PublicKeyParseError(s.to_owned());
        let bytes: [u8; 32] = hex::decode(s.trim())
            .map_err(|_| err())?
            .try_into()
            .map_err(|_| err())?;
        Self::from_bytes(&bytes).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_key_is_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.key");
        let a = Identity::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
    }

    #[test]
    fn malformed_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        std::fs::write(&path, "not a key").unwrap();
        let err = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(
            err.contains("node.key") && err.contains("not a Fabric key"),
            "{err}"
        );
    }

    #[test]
    fn public_key_parses_its_display() {
        let id = Identity::generate().unwrap();
        let text = id.public().to_string();
        assert_eq!(text.parse::<PublicKey>().unwrap(), id.public());
        assert!("abc".parse::<PublicKey>().is_err());
    }
}
