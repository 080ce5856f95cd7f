//! rustls configurations that trust pinned ed25519 keys and nothing else.

use std::sync::Arc;

use fabric_proto::wire::ALPN;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use crate::{Identity, PublicKey};

/// DER prefix of an ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The ed25519 key a certificate's subject public key info holds.
pub fn cert_key(cert: &CertificateDer<'_>) -> Result<PublicKey, Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    let bytes: &[u8] = spki.as_ref();
    let key = bytes
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| PublicKey::from_bytes(&k))
        .ok_or_else(|| Error::General("peer certificate is not an ed25519 key".into()))?;
    Ok(key)
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// How a handshake with a dispatcher whose key is not pinned fails (the
/// words the client looks for to tell a stale profile from a dead peer).
pub const NOT_PINNED: &str = "is not the pinned key";

fn verify13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(Error::General(format!(
            "peer signed with {:?}; Fabric accepts only ed25519",
            dss.scheme
        )));
    }
    rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
}

/// The signature half shared by both verifiers: TLS 1.3 with ed25519 only,
/// checked against the key in the peer's own certificate.
macro_rules! ed25519_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            Err(Error::General("TLS 1.2 is not supported".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify13(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

/// Accepts a server only if its key is one of the pinned keys.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    pinned: Vec<PublicKey>,
    algs: WebPkiSupportedAlgorithms,
}

impl PinnedServerVerifier {
    /// Trusts exactly these keys.
    pub fn new(pinned: Vec<PublicKey>) -> Self {
        Self {
            pinned,
            algs: algorithms(),
        }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let key = cert_key(end_entity)?;
        if self.pinned.contains(&key) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::General(format!("dispatcher key {key} {NOT_PINNED}")))
        }
    }

    ed25519_signatures!();
}

/// Requires every client to prove an ed25519 key; which keys may do what is
/// decided by the application after the handshake (see [`crate::peer_key`]).
#[derive(Debug)]
pub struct AnyEd25519ClientVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl Default for AnyEd25519ClientVerifier {
    fn default() -> Self {
        Self { algs: algorithms() }
    }
}

impl ClientCertVerifier for AnyEd25519ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        cert_key(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    ed25519_signatures!();
}

/// The server side: presents `id`, requires an ed25519 client certificate.
pub fn server_config(id: &Identity) -> Result<rustls::ServerConfig, Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyEd25519ClientVerifier::default()))
        .with_single_cert(vec![id.cert()], id.private_key_der())?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// The client side: presents `id`, trusts only `pinned` server keys.
pub fn client_config(id: &Identity, pinned: Vec<PublicKey>) -> Result<rustls::ClientConfig, Error> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier::new(pinned)))
        .with_client_auth_cert(vec![id.cert()], id.private_key_der())?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}
