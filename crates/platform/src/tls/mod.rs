//! Service identity: every service-to-service call is mutual TLS, and each side knows which
//! service the other is.
//!
//! A service's certificate names it with a SPIFFE id, `spiffe://<trust domain>/service/<name>`,
//! issued by the shop's CA (made by `nubo up` in its data directory, by cert-manager in a
//! cluster). Its directory holds `tls.crt`, `tls.key` and `ca.crt`, the layout of a cert-manager
//! Secret; the files are read again when they change, so a renewed certificate is used without a
//! restart.
//!
//! As a client a service checks the answering certificate against the CA and requires it to name
//! the service it meant to call (not a host name: addresses change, identities do not), and
//! presents its own. As a server it accepts TLS with or without a client certificate on its one
//! port, next to plain HTTP for probes, metrics and public reads; what a request came over is in
//! its [`Peer`], which the server stack checks before any internal route runs.

pub mod authority;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio_util::sync::CancellationToken;

/// The trust domain of SPIFFE ids unless `NUBO_TLS_TRUST_DOMAIN` says otherwise.
pub const DEFAULT_TRUST_DOMAIN: &str = "nubo.local";
/// The files of a service's identity, named as a cert-manager Secret mounts them.
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
pub const CA_FILE: &str = "ca.crt";
/// How often the files are looked at for a renewal.
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// `spiffe://<trust_domain>/service/<service>`: the name a service's certificate carries.
pub fn spiffe_id(trust_domain: &str, service: &str) -> String {
    format!("spiffe://{trust_domain}/service/{service}")
}

/// Who sent a request: a service that proved its identity with a client certificate, or
/// anyone (plain HTTP, or TLS without a certificate). Every request carries one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Anonymous,
    Service(String),
}

impl Peer {
    /// The calling service, if the connection proved one.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::Service(name) => Some(name),
            Self::Anonymous => None,
        }
    }
}

/// The service a certificate names in its trust domain, if it names one.
pub fn service_named_by(certificate: &[u8], trust_domain: &str) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    let prefix = format!("spiffe://{trust_domain}/service/");
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => uri
                .strip_prefix(&prefix)
                .filter(|s| !s.is_empty() && !s.contains('/'))
                .map(str::to_owned),
            _ => None,
        })
}

/// When a certificate stops being valid.
pub fn not_after(certificate: &[u8]) -> Option<SystemTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let secs = u64::try_from(parsed.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the files held when they were last read.
struct Material {
    certified: Arc<CertifiedKey>,
    roots: Arc<RootCertStore>,
    server: Arc<ServerConfig>,
    /// The files' contents, to tell a renewal from a look that found nothing new.
    read: Vec<u8>,
}

/// A service's identity: its certificate and key, and the CA it trusts. Cheap to clone.
#[derive(Clone)]
pub struct ServiceIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    trust_domain: String,
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Material>>,
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceIdentity")
            .field("service", &self.inner.service)
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl ServiceIdentity {
    /// Reads `service`'s identity from `dir`. Refuses a certificate that does not name
    /// `service`, or that the CA in `dir` did not issue.
    pub fn load(service: &str, trust_domain: &str, dir: &Path) -> anyhow::Result<Self> {
        let provider = provider();
        let material = read(service, trust_domain, dir, &provider)?;
        Ok(Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                trust_domain: trust_domain.to_owned(),
                dir: dir.to_owned(),
                provider,
                current: RwLock::new(Arc::new(material)),
            }),
        })
    }

    pub fn service(&self) -> &str {
        &self.inner.service
    }

    pub fn trust_domain(&self) -> &str {
        &self.inner.trust_domain
    }

    fn current(&self) -> Arc<Material> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The server side: TLS 1.2 or 1.3, a client certificate optional (its absence is judged
    /// per route), checked against the CA when sent.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current().server.clone()
    }

    /// Who the peer of a finished handshake is.
    pub fn peer_of(&self, connection: &rustls::ServerConnection) -> Peer {
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| service_named_by(leaf, &self.inner.trust_domain))
            .map_or(Peer::Anonymous, Peer::Service)
    }

    /// The client side of calls to `target`: presents this service's certificate and accepts
    /// only a certificate from the CA naming `target`.
    pub fn client_config(&self, target: &str) -> ClientConfig {
        let verifier = Arc::new(NamesTarget {
            identity: self.clone(),
            expected: target.to_owned(),
        });
        let resolver = Arc::new(OwnCertificate(self.clone()));
        // No ALPN here: the HTTP client offers what it speaks (HTTP/1.1).
        ClientConfig::builder_with_provider(self.inner.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver)
    }

    /// Reads the files again; true if they changed and the new ones are in use. A bad renewal
    /// (a half-written file, a certificate for another service) keeps the old identity.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let inner = &self.inner;
        let contents = contents(&inner.dir)?;
        if contents == self.current().read {
            return Ok(false);
        }
        let material = read(
            &inner.service,
            &inner.trust_domain,
            &inner.dir,
            &inner.provider,
        )?;
        *inner.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(material);
        Ok(true)
    }

    /// Looks at the files every few seconds until `token` is cancelled.
    pub async fn watch(self, token: CancellationToken) {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
            }
            match self.reload() {
                Ok(true) => {
                    tracing::info!(dir = %self.inner.dir.display(), "service certificate renewed")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot read a renewed service certificate; keeping the current one"
                ),
            }
        }
    }
}

fn contents(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut all = Vec::new();
    for file in [CERT_FILE, KEY_FILE, CA_FILE] {
        let path = dir.join(file);
        all.extend(
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    Ok(all)
}

fn read(
    service: &str,
    trust_domain: &str,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Material> {
    let read = contents(dir)?;
    let path = |file: &str| dir.join(file);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path(CERT_FILE))
        .and_then(|certs| certs.collect())
        .with_context(|| {
            format!(
                "{} holds no readable certificate",
                path(CERT_FILE).display()
            )
        })?;
    let leaf = chain
        .first()
        .with_context(|| format!("{} holds no certificate", path(CERT_FILE).display()))?;
    let named = service_named_by(leaf, trust_domain);
    anyhow::ensure!(
        named.as_deref() == Some(service),
        "{} names {}, not {}",
        path(CERT_FILE).display(),
        named.map_or_else(|| "no service".to_owned(), |n| spiffe_id(trust_domain, &n)),
        spiffe_id(trust_domain, service)
    );
    let key = PrivateKeyDer::from_pem_file(path(KEY_FILE))
        .with_context(|| format!("{} holds no readable private key", path(KEY_FILE).display()))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(path(CA_FILE))
        .with_context(|| format!("cannot read {}", path(CA_FILE).display()))?
    {
        roots
            .add(ca.with_context(|| format!("{} is not PEM", path(CA_FILE).display()))?)
            .with_context(|| format!("{} holds an unusable CA", path(CA_FILE).display()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no CA", path(CA_FILE).display());
    let roots = Arc::new(roots);
    // The certificate must chain to the CA: a mismatched pair would fail every call later.
    let parsed = ParsedCertificate::try_from(leaf)?;
    verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &chain[1..],
        UnixTime::now(),
        provider.signature_verification_algorithms.all,
    )
    .with_context(|| {
        format!(
            "{} was not issued by the CA in {}",
            path(CERT_FILE).display(),
            path(CA_FILE).display()
        )
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("{} is not a usable key", path(KEY_FILE).display()))?;
    let certified = Arc::new(CertifiedKey::new(chain, signing_key));
    certified.keys_match().with_context(|| {
        format!(
            "{} does not match {}",
            path(KEY_FILE).display(),
            path(CERT_FILE).display()
        )
    })?;
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("cannot build the client certificate verifier")?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_client_cert_verifier(clients)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            certified.clone(),
        )));
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Material {
        certified,
        roots,
        server: Arc::new(server),
        read,
    })
}

/// Presents the service's current certificate to whoever it calls.
#[derive(Debug)]
struct OwnCertificate(ServiceIdentity);

impl ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Accepts a server certificate that chains to the CA and names the service being called.
#[derive(Debug)]
struct NamesTarget {
    identity: ServiceIdentity,
    expected: String,
}

impl ServerCertVerifier for NamesTarget {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let provider = &self.identity.inner.provider;
        let roots = self.identity.current().roots.clone();
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            intermediates,
            now,
            provider.signature_verification_algorithms.all,
        )?;
        match service_named_by(end_entity, &self.identity.inner.trust_domain) {
            Some(name) if name == self.expected => Ok(ServerCertVerified::assertion()),
            named => {
                tracing::warn!(
                    expected = %self.expected,
                    presented = named.as_deref().unwrap_or("no service"),
                    "a service answered with another service's certificate"
                );
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self
                .identity
                .inner
                .provider
                .signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self
                .identity
                .inner
                .provider
                .signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.identity
            .inner
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
