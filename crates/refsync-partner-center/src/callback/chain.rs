//! Deciding whether a fetched certificate may vouch for Partner Center callbacks.
//!
//! Reference §2.5 steps 3-4 and DESIGN.md "Webhook intake": the leaf must chain
//! to a configured trust anchor (rustls-webpki builds the path and checks
//! validity and extended key usage on every certificate in it), allow digital
//! signatures, be valid for the configured DNS name, and name the configured
//! organization in its subject O, or, only where the subject names no
//! organization at all, in its issuer's O. Microsoft's sample checked only the
//! issuer, which accepts any certificate a Microsoft CA issued to anyone.
//!
//! The result, a [`TrustedCertificate`], holds the parsed RSA key and the validity
//! window of the verified path, so that a cached certificate costs one RSA
//! verification per request and its dates are still checked against each
//! request's `now`.

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_PKCS1_RSAENCRYPTION, OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use super::config::{EkuPolicy, TrustAnchorSource, VerifierConfig, VerifierConfigError};
use super::rejection::CallbackRejection;

/// Most certificates accepted from one file (a leaf and a few intermediates).
const MAX_CERTIFICATES_PER_FILE: usize = 8;
/// RSA key sizes accepted for the body signature, as `RSA_PKCS1_2048_8192_SHA256`.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A leaf certificate that passed every check, ready to verify body signatures.
pub(crate) struct TrustedCertificate {
    key: ParsedPublicKey,
    /// Latest notBefore in the verified path (Unix seconds).
    not_before: i64,
    /// Earliest notAfter in the verified path (Unix seconds).
    not_after: i64,
}

impl TrustedCertificate {
    /// The leaf's parsed RSA public key.
    pub(crate) fn key(&self) -> &ParsedPublicKey {
        &self.key
    }

    /// Checks the validity window of the whole path against `now`.
    pub(crate) fn check_validity(&self, now: DateTime<Utc>) -> Result<(), CallbackRejection> {
        let now = now.timestamp();
        if now < self.not_before {
            Err(CallbackRejection::CertificateNotYetValid)
        } else if now > self.not_after {
            Err(CallbackRejection::CertificateExpired)
        } else {
            Ok(())
        }
    }

    /// True once any certificate of the path has expired.
    pub(crate) fn has_expired(&self, now: DateTime<Utc>) -> bool {
        now.timestamp() > self.not_after
    }
}

/// Why a chain was refused: either for good, or because an issuer is missing
/// (which an AIA fetch may cure).
pub(crate) enum ChainFailure {
    /// No path to a trust anchor with the intermediates at hand.
    UnknownIssuer,
    /// Any other refusal.
    Rejected(CallbackRejection),
}

impl From<ChainFailure> for CallbackRejection {
    fn from(f: ChainFailure) -> Self {
        match f {
            ChainFailure::UnknownIssuer => CallbackRejection::UntrustedChain(
                "no path to a trust anchor (unknown issuer)".to_owned(),
            ),
            ChainFailure::Rejected(r) => r,
        }
    }
}

/// The trust decisions of the configuration, loaded once.
pub(crate) struct ChainPolicy {
    anchors: Vec<TrustAnchor<'static>>,
    bundled_intermediates: Vec<CertificateDer<'static>>,
    dns_name: ServerName<'static>,
    organization: String,
    eku: EkuPolicy,
}

impl ChainPolicy {
    /// Loads trust anchors and intermediates and validates names.
    pub(crate) fn from_config(config: &VerifierConfig) -> Result<Self, VerifierConfigError> {
        let anchors = match &config.trust_anchors {
            TrustAnchorSource::WebPki => webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            TrustAnchorSource::PemFile(path) => load_anchors(path)?,
        };
        let bundled_intermediates = match &config.intermediates {
            Some(path) => load_pem_certificates(path, "intermediate certificates")?,
            None => Vec::new(),
        };
        let dns_name = ServerName::try_from(config.dns_name.clone())
            .ok()
            .filter(|n| matches!(n, ServerName::DnsName(_)))
            .ok_or_else(|| VerifierConfigError::BadDnsName(config.dns_name.clone()))?;
        if config.organization.trim().is_empty() {
            return Err(VerifierConfigError::EmptyOrganization);
        }
        Ok(Self {
            anchors,
            bundled_intermediates,
            dns_name,
            organization: config.organization.clone(),
            eku: config.required_eku,
        })
    }

    /// Runs every certificate check on `leaf`, building the path with the served
    /// intermediates, the configured bundle and any fetched through AIA.
    pub(crate) fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'static>],
        now: DateTime<Utc>,
    ) -> Result<TrustedCertificate, ChainFailure> {
        let rejected = ChainFailure::Rejected;
        let end_entity = EndEntityCert::try_from(leaf).map_err(|e| {
            rejected(CallbackRejection::UntrustedChain(format!(
                "leaf does not parse: {e}"
            )))
        })?;
        let all_intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .chain(&self.bundled_intermediates)
            .cloned()
            .collect();
        let path = end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &all_intermediates,
                unix_time(now),
                EkuCheck(self.eku),
                None,
                None,
            )
            .map_err(map_webpki_error)?;

        let (_, parsed) = X509Certificate::from_der(leaf).map_err(|_| {
            rejected(CallbackRejection::UntrustedChain(
                "leaf does not parse".to_owned(),
            ))
        })?;
        check_key_usage(&parsed).map_err(rejected)?;
        end_entity
            .verify_is_valid_for_subject_name(&self.dns_name)
            .map_err(|_| rejected(CallbackRejection::WrongDnsName))?;
        check_organization(&parsed, &self.organization).map_err(rejected)?;
        let key = rsa_key(&parsed).map_err(rejected)?;

        let mut not_before = parsed.validity().not_before.timestamp();
        let mut not_after = parsed.validity().not_after.timestamp();
        for cert in path.intermediate_certificates() {
            let der = cert.der();
            if let Ok((_, c)) = X509Certificate::from_der(&der) {
                not_before = not_before.max(c.validity().not_before.timestamp());
                not_after = not_after.min(c.validity().not_after.timestamp());
            }
        }
        Ok(TrustedCertificate {
            key,
            not_before,
            not_after,
        })
    }
}

fn unix_time(now: DateTime<Utc>) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.timestamp()).unwrap_or(0),
    ))
}

fn map_webpki_error(e: webpki::Error) -> ChainFailure {
    use webpki::Error as E;
    let rejection = match e {
        E::UnknownIssuer => return ChainFailure::UnknownIssuer,
        E::CertExpired { .. } => CallbackRejection::CertificateExpired,
        E::CertNotValidYet { .. } => CallbackRejection::CertificateNotYetValid,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => CallbackRejection::WrongKeyUsage,
        other => CallbackRejection::UntrustedChain(other.to_string()),
    };
    ChainFailure::Rejected(rejection)
}

/// The configured [`EkuPolicy`] as webpki's validator.
struct EkuCheck(EkuPolicy);

impl ExtendedKeyUsageValidator for EkuCheck {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self.0 {
            EkuPolicy::ServerAuth => KeyUsage::server_auth().validate(iter),
            EkuPolicy::Any => {
                for purpose in iter {
                    purpose?;
                }
                Ok(())
            }
        }
    }
}

/// The key signs bodies, so a key-usage extension must allow digital signatures.
fn check_key_usage(leaf: &X509Certificate<'_>) -> Result<(), CallbackRejection> {
    match leaf.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        _ => Err(CallbackRejection::WrongKeyUsage),
    }
}

/// The organization rule of DESIGN.md: the subject's O when it has one, the
/// issuer's O only when the subject names no organization at all.
fn check_organization(leaf: &X509Certificate<'_>, wanted: &str) -> Result<(), CallbackRejection> {
    let names = |name: &X509Name<'_>| -> Vec<Option<String>> {
        name.iter_organization()
            .map(|attr| attr.as_str().ok().map(str::to_owned))
            .collect()
    };
    let subject = names(leaf.subject());
    let candidates = if subject.is_empty() {
        names(leaf.issuer())
    } else {
        subject
    };
    if candidates.iter().flatten().any(|o| o == wanted) {
        Ok(())
    } else {
        Err(CallbackRejection::WrongOrganization)
    }
}

/// The leaf's RSA key, parsed once for every later verification.
fn rsa_key(leaf: &X509Certificate<'_>) -> Result<ParsedPublicKey, CallbackRejection> {
    let spki = leaf.public_key();
    if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(CallbackRejection::UnsupportedKey);
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if RSA_BITS.contains(&rsa.key_size()) => {}
        _ => return Err(CallbackRejection::UnsupportedKey),
    }
    ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki.raw)
        .map_err(|_| CallbackRejection::UnsupportedKey)
}

/// The AIA `caIssuers` URLs of a certificate, in order.
pub(crate) fn ca_issuers_urls(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in parsed.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS
                    && let GeneralName::URI(uri) = desc.access_location
                {
                    urls.push(uri.to_owned());
                }
            }
        }
    }
    urls
}

/// Decodes a certificate file: PEM (any number of `CERTIFICATE` blocks, other
/// blocks ignored) or DER (one or more concatenated certificates). The first
/// certificate is the leaf. Every certificate must parse as X.509.
pub(crate) fn decode_certificates(bytes: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let trimmed = bytes.trim_ascii_start();
    let ders: Vec<Vec<u8>> = if trimmed.starts_with(b"-----BEGIN") {
        let mut out = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(trimmed) {
            let pem = pem.ok()?;
            if pem.label == "CERTIFICATE" {
                out.push(pem.contents);
            }
            if out.len() > MAX_CERTIFICATES_PER_FILE {
                return None;
            }
        }
        out
    } else {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (after, _) = X509Certificate::from_der(rest).ok()?;
            let used = rest.len() - after.len();
            out.push(rest[..used].to_vec());
            rest = after;
            if out.len() > MAX_CERTIFICATES_PER_FILE {
                return None;
            }
        }
        out
    };
    if ders.is_empty() {
        return None;
    }
    ders.into_iter()
        .map(|der| {
            let (rest, _) = X509Certificate::from_der(&der).ok()?;
            rest.is_empty().then(|| CertificateDer::from(der))
        })
        .collect()
}

fn load_pem_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, VerifierConfigError> {
    let bytes = std::fs::read(path).map_err(|source| VerifierConfigError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    let bad = |detail: &str| VerifierConfigError::BadPem {
        what,
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Err(bad("not a PEM file"));
    }
    decode_certificates(&bytes)
        .ok_or_else(|| bad("no CERTIFICATE block, or one that does not parse"))
}

fn load_anchors(path: &Path) -> Result<Vec<TrustAnchor<'static>>, VerifierConfigError> {
    let certs = load_pem_certificates(path, "trust anchors")?;
    certs
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(der)
                .map(|a| a.to_owned())
                .map_err(|e| VerifierConfigError::BadPem {
                    what: "trust anchors",
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
        })
        .collect()
}
