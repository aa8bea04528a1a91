//! TLS shared by every client Banso opens (PostgreSQL, NATS, OTLP, a JWKS
//! endpoint): one rustls crypto provider, and PEM files read with errors
//! that name the file, never its contents.

use std::{fmt, path::Path, sync::Once};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Installs rustls's `ring` provider as the process default, once; later
/// calls do nothing. rustls picks a provider by itself only while exactly
/// one is compiled in; installing ours keeps every client working if a
/// dependency ever enables a second (aws-lc-rs, which also needs cmake).
/// Every client constructor in the kit calls it, so callers need not.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only if a provider is already installed: then that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A PEM file that cannot be used, with the reason; the caller adds the
/// setting's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemError(String);

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PemError {}

fn read(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|e| PemError(format!("cannot read {path:?}: {e}")))
}

/// The certificates in the PEM file at `path` (a CA bundle, or a client
/// certificate and its chain): at least one, all well-formed.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError(format!("{path:?} is not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(PemError(format!("{path:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")));
    }
    Ok(certs)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let pem = read(path)?;
    // The parser's detail could quote bytes of the key: left out.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => PemError(format!("{path:?} holds no PEM private key")),
        _ => PemError(format!("{path:?} is not a valid PEM private key")),
    })
}

/// The bytes of the PEM CA file at `path`, checked to hold certificates:
/// what `tonic::transport::Certificate::from_pem` or
/// `reqwest::Certificate::from_pem_bundle` take.
pub fn ca_pem(path: &Path) -> Result<Vec<u8>, PemError> {
    load_certificates(path)?;
    read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../tests/keys/ca.pem");

    fn file(name: &str, contents: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("banso-kit-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn install_provider_is_idempotent() {
        install_provider();
        install_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn certificates_load_and_bad_files_say_why() {
        assert_eq!(load_certificates(&file("ca.pem", CERT)).unwrap().len(), 1);
        assert!(!ca_pem(&file("ca2.pem", CERT)).unwrap().is_empty());
        let err = load_certificates(&file("empty.pem", "hello\n")).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        let err = load_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_certificate_is_not_a_key() {
        let key = file("key.pem", include_str!("../tests/keys/rsa.pem"));
        assert!(load_private_key(&key).is_ok());
        let err = load_private_key(&file("cert-as-key.pem", CERT)).unwrap_err().to_string();
        assert!(err.contains("no PEM private key"), "{err}");
        assert!(!err.contains("BEGIN"), "the file's contents stay out of the message: {err}");
    }
}
