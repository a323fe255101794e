//! TLS for every listener (rustls): a certificate and key from PEM files, optionally a
//! CA bundle that client certificates are verified against (mutual TLS). The files are
//! read again every `reload_interval`; when they change, new connections get the new
//! certificate and open ones carry on, so a rotation needs no restart. A rotation that
//! cannot be loaded (a key that does not match, half-written files) keeps the last
//! good one and is logged and counted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// `tls` of a listener (`[otlp.tls]`, `[api.tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates, PEM, that client certificates must chain to (mutual TLS).
    /// A client may still connect without one and authenticate by bearer token; one
    /// that presents a certificate from another CA is refused at the handshake.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for a rotation.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(5)
}

/// Why a TLS setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tls: {0}")]
    Rustls(String),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The files' bytes, to tell a rotation from no change.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(config: &TlsConfig) -> Result<Files, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(|error| file_error(path, error));
        Ok(Files {
            cert: read(&config.cert)?,
            key: read(&config.key)?,
            client_ca: config.client_ca.as_deref().map(read).transpose()?,
        })
    }
}

fn server_config(config: &TlsConfig, files: &Files) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<_, _>>()
        .map_err(|error| file_error(&config.cert, format!("not PEM certificates: {error}")))?;
    if certs.is_empty() {
        return Err(file_error(
            &config.cert,
            "holds no certificate (expected PEM `BEGIN CERTIFICATE`)",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|error| file_error(&config.key, format!("holds no PEM private key: {error}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Rustls(error.to_string()))?;
    let builder = match (&config.client_ca, &files.client_ca) {
        (Some(path), Some(bytes)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(bytes) {
                let cert = cert.map_err(|error| file_error(path, format!("not PEM certificates: {error}")))?;
                roots
                    .add(cert)
                    .map_err(|error| file_error(path, format!("not a CA certificate: {error}")))?;
            }
            if roots.is_empty() {
                return Err(file_error(path, "holds no CA certificate"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|error| file_error(path, error))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .map_err(|error| file_error(&config.key, format!("does not fit the certificate: {error}")))?;
    // gRPC needs HTTP/2, negotiated by ALPN; OTLP/HTTP clients speak either.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

/// The current TLS acceptor of one listener, reloaded when its files change.
pub struct ReloadingTls {
    name: &'static str,
    config: TlsConfig,
    acceptor: RwLock<TlsAcceptor>,
    loaded: Mutex<Files>,
}

impl ReloadingTls {
    /// Loads the files; fails if they cannot serve (so a bad setting stops the start).
    pub fn load(name: &'static str, config: &TlsConfig) -> Result<Arc<ReloadingTls>, TlsError> {
        let files = Files::read(config)?;
        let server = server_config(config, &files)?;
        Ok(Arc::new(ReloadingTls {
            name,
            config: config.clone(),
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(server))),
            loaded: Mutex::new(files),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().expect("never poisoned").clone()
    }

    /// Reads the files again; `Ok(true)` when they changed and now serve.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let files = Files::read(&self.config)?;
        let mut loaded = self.loaded.lock().expect("never poisoned");
        if *loaded == files {
            return Ok(false);
        }
        let server = server_config(&self.config, &files)?;
        *self.acceptor.write().expect("never poisoned") = TlsAcceptor::from(Arc::new(server));
        *loaded = files;
        Ok(true)
    }

    /// Checks the files every `reload_interval` until `shutdown`.
    pub async fn watch(self: Arc<Self>, metrics: super::ListenerMetrics, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.reload_interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let this = self.clone();
            let reloaded = tokio::task::spawn_blocking(move || this.reload()).await;
            match reloaded {
                Ok(Ok(true)) => {
                    metrics.tls_reloaded(self.name, "loaded");
                    tracing::info!(listener = self.name, cert = %self.config.cert.display(), "TLS certificate reloaded");
                }
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    metrics.tls_reloaded(self.name, "failed");
                    tracing::warn!(listener = self.name, %error, "TLS files changed but cannot be used; serving the last good certificate");
                }
                Err(error) => tracing::warn!(listener = self.name, %error, "TLS reload stopped"),
            }
        }
    }
}

/// The subject common names and DNS/URI alternative names of a client certificate.
pub fn certificate_subjects(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut subjects: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(alternative)) = cert.subject_alternative_name() {
        for name in &alternative.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(name)
                | x509_parser::extensions::GeneralName::URI(name) => subjects.push(name.to_string()),
                _ => {}
            }
        }
    }
    subjects
}
