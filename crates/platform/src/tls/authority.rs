//! The shop's own certificate authority, for `nubo up`, `nubo certs` and the tests: a CA kept
//! in a directory (`ca.crt`, `ca.key`), and a service's identity issued from it into
//! `<dir>/<service>/` (`tls.crt`, `tls.key`, `ca.crt`, as cert-manager lays a Secret out). In a
//! cluster cert-manager plays this part with the `Certificate` objects `nubo manifests` writes.
//!
//! A service certificate names the service three ways: its SPIFFE id (what nubo checks), and
//! its DNS name and loopback (so `curl --cacert` can check it too). It is valid for a year and
//! issued again when less than a month is left; files are replaced whole (written aside, then
//! renamed), so a service re-reading them never sees half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::{CA_FILE, CERT_FILE, KEY_FILE, not_after, service_named_by, spiffe_id};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";

const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const SERVICE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate with less than this left is issued again.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates start a little in the past, for clocks slightly behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// A CA that issues service identities.
pub struct Authority {
    dir: PathBuf,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    /// The CA kept in `dir`, created there if there is none.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the CA directory {}", dir.display()))?;
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if !key_path.exists() {
            let key = KeyPair::generate().context("cannot generate the CA key")?;
            let mut params = CertificateParams::default();
            params
                .distinguished_name
                .push(DnType::CommonName, "nubo service CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            (params.not_before, params.not_after) = validity(CA_LIFETIME);
            let cert = params
                .self_signed(&key)
                .context("cannot sign the CA certificate")?;
            write_secret(&key_path, key.serialize_pem().as_bytes())?;
            write_public(&cert_path, cert.pem().as_bytes())?;
        }
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{} is not a usable key", key_path.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .with_context(|| format!("{} is not a usable CA", cert_path.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            cert_pem,
            issuer,
        })
    }

    /// Where `service`'s identity is issued to.
    pub fn dir_of(&self, service: &str) -> PathBuf {
        self.dir.join(service)
    }

    /// `service`'s identity in [`Authority::dir_of`], issued unless one from this CA naming it
    /// is there with more than a month to run. Returns its directory.
    pub fn ensure(&self, service: &str, trust_domain: &str) -> anyhow::Result<PathBuf> {
        let dir = self.dir_of(service);
        if !self.holds_valid(&dir, service, trust_domain) {
            self.issue(service, trust_domain, &dir)?;
        }
        Ok(dir)
    }

    fn holds_valid(&self, dir: &Path, service: &str, trust_domain: &str) -> bool {
        let same_ca =
            std::fs::read_to_string(dir.join(CA_FILE)).is_ok_and(|ca| ca == self.cert_pem);
        let leaf = std::fs::read(dir.join(CERT_FILE)).ok().and_then(|pem| {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            CertificateDer::from_pem_slice(&pem).ok()
        });
        let Some(leaf) = leaf else { return false };
        let names_it = service_named_by(&leaf, trust_domain).as_deref() == Some(service);
        let fresh = not_after(&leaf).is_some_and(|end| end > SystemTime::now() + RENEW_BEFORE);
        same_ca && names_it && fresh && dir.join(KEY_FILE).exists()
    }

    /// Issues `service`'s identity into `dir`, replacing what is there.
    pub fn issue(&self, service: &str, trust_domain: &str, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key = KeyPair::generate().context("cannot generate a service key")?;
        let mut params = CertificateParams::new(vec![
            service.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .context("invalid service name")?;
        params.subject_alt_names.push(SanType::URI(
            spiffe_id(trust_domain, service)
                .try_into()
                .context("invalid SPIFFE id")?,
        ));
        params.distinguished_name.push(DnType::CommonName, service);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        (params.not_before, params.not_after) = validity(SERVICE_LIFETIME);
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("cannot sign {service}'s certificate"))?;
        // The CA first and the key last: a service re-reading between two renames sees a key
        // that does not match its certificate, refuses it, and keeps what it had.
        write_public(&dir.join(CA_FILE), self.cert_pem.as_bytes())?;
        write_public(&dir.join(CERT_FILE), cert.pem().as_bytes())?;
        write_secret(&dir.join(KEY_FILE), key.serialize_pem().as_bytes())?;
        Ok(())
    }
}

fn validity(lifetime: Duration) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (now - BACKDATE, now + lifetime)
}

fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_replacing(path, contents, 0o644)
}

fn write_secret(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_replacing(path, contents, 0o600)
}

/// Writes `contents` aside and renames it over `path`, so readers see the old file or the new.
fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&aside)
        .with_context(|| format!("cannot write {}", aside.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", aside.display()))?;
    std::fs::rename(&aside, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ServiceIdentity;

    #[test]
    fn an_issued_identity_names_its_service_and_is_kept_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::open(dir.path()).unwrap();
        let issued = ca.ensure("orders", "nubo.test").unwrap();
        let identity = ServiceIdentity::load("orders", "nubo.test", &issued).unwrap();
        assert_eq!(identity.service(), "orders");
        let first = std::fs::read(issued.join(CERT_FILE)).unwrap();
        // A second look finds it valid and leaves it alone; the CA is reused, not remade.
        let again = Authority::open(dir.path()).unwrap();
        again.ensure("orders", "nubo.test").unwrap();
        assert_eq!(std::fs::read(issued.join(CERT_FILE)).unwrap(), first);
        // Another trust domain is another name: issued anew.
        again.ensure("orders", "other.test").unwrap();
        assert_ne!(std::fs::read(issued.join(CERT_FILE)).unwrap(), first);
    }

    #[test]
    fn an_identity_for_another_service_or_from_another_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::open(&dir.path().join("one")).unwrap();
        let orders = ca.ensure("orders", "nubo.test").unwrap();
        let error = ServiceIdentity::load("payments", "nubo.test", &orders)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("spiffe://nubo.test/service/orders"),
            "{error}"
        );
        // The certificate of one CA next to another CA's certificate.
        let other = Authority::open(&dir.path().join("two")).unwrap();
        let elsewhere = other.ensure("orders", "nubo.test").unwrap();
        std::fs::copy(elsewhere.join(CA_FILE), orders.join(CA_FILE)).unwrap();
        let error = ServiceIdentity::load("orders", "nubo.test", &orders).unwrap_err();
        assert!(
            format!("{error:#}").contains("not issued by the CA"),
            "{error:#}"
        );
    }

    #[test]
    fn a_renewed_certificate_is_taken_up_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::open(dir.path()).unwrap();
        let issued = ca.ensure("cart", "nubo.test").unwrap();
        let identity = ServiceIdentity::load("cart", "nubo.test", &issued).unwrap();
        assert!(!identity.reload().unwrap(), "nothing changed yet");
        ca.issue("cart", "nubo.test", &issued).unwrap();
        assert!(identity.reload().unwrap(), "the renewal is read");
        // A broken renewal keeps the identity that works.
        std::fs::write(issued.join(KEY_FILE), "not a key").unwrap();
        assert!(identity.reload().is_err());
        assert_eq!(identity.service(), "cart");
    }
}
