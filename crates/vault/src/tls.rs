//! TLS: certificate loading, development-certificate generation, and the rustls server
//! configuration (TLS 1.2 and 1.3 only, ring provider).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::crypto::sha256_fingerprint;

/// TLS set-up errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a certificate/key file failed.
    Io(PathBuf, std::io::Error),
    /// A PEM file did not contain a usable certificate or key.
    Pem(PathBuf),
    /// Generating the development certificate failed.
    Generate(String),
    /// rustls rejected the configuration.
    Config(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Self::Pem(p) => write!(f, "{}: no usable PEM certificate or private key", p.display()),
            Self::Generate(e) => write!(f, "could not generate the development certificate: {e}"),
            Self::Config(e) => write!(f, "TLS configuration rejected: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A loaded certificate chain and key.
#[derive(Debug)]
pub struct TlsMaterial {
    /// Certificate chain (leaf first).
    pub certs: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
    /// Path of the certificate file.
    pub cert_path: PathBuf,
    /// SHA-256 fingerprint of the leaf certificate (`AB:CD:…`).
    pub fingerprint: String,
    /// Whether a development certificate was generated just now.
    pub generated: bool,
}

/// Paths of the development certificate inside a data directory.
pub fn dev_cert_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), std::io::Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Generates a self-signed development certificate for `localhost`, `127.0.0.1` and `::1`
/// into `data_dir/tls/` unless one exists.
pub fn ensure_dev_cert(data_dir: &Path) -> Result<bool, TlsError> {
    let (cert_path, key_path) = dev_cert_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).map_err(|e| TlsError::Io(dir.clone(), e))?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key_path, certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| TlsError::Io(key_path.clone(), e))?;
    fs::write(&cert_path, certified.cert.pem()).map_err(|e| TlsError::Io(cert_path.clone(), e))?;
    Ok(true)
}

/// Loads the configured certificate, or the data directory's development certificate
/// (generating it on first use).
pub fn load(data_dir: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_owned(), k.to_owned(), false),
        _ => {
            let generated = ensure_dev_cert(data_dir)?;
            let (c, k) = dev_cert_paths(data_dir);
            (c, k, generated)
        }
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|_| TlsError::Pem(cert_path.clone()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem(cert_path.clone()))?;
    let leaf = certs.first().ok_or_else(|| TlsError::Pem(cert_path.clone()))?;
    let fingerprint = sha256_fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| TlsError::Pem(key_path.clone()))?;
    Ok(TlsMaterial { certs, key, cert_path, fingerprint, generated })
}

/// The certificates of a PEM file (at least one), as DER: extra trust roots such as
/// `--webhook-test-ca`.
pub fn ca_file(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|_| TlsError::Pem(path.to_owned()))?
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem(path.to_owned()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(path.to_owned()));
    }
    Ok(certs)
}

/// The rustls server configuration: TLS 1.3 and 1.2 only; ALPN offers HTTP/2, then HTTP/1.1
/// (rustls has only AEAD suites with forward secrecy, as HTTP/2 requires of TLS 1.2).
pub fn server_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(material.certs.clone(), material.key.clone_key())
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
