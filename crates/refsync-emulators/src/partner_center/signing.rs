//! The certificate chain webhook deliveries are signed with, generated at start
//! (partner-center.md §2.5, DESIGN.md "Webhook intake"):
//!
//! - a self-signed root (the emulator's trust anchor, handed out as PEM);
//! - an intermediate issued to the configured organization;
//! - an RSA leaf for `pcnotifications-dispatch.microsoft.com` (CN and DNS SAN),
//!   `O=Microsoft Corporation`, server-auth EKU, digital-signature key usage, and
//!   an Authority Information Access caIssuers URL naming the intermediate, as
//!   public web PKI leaves carry.
//!
//! Bodies are signed RSA PKCS#1 v1.5 SHA-256 (`rsa-sha256`) with aws-lc-rs.
//! The two CAs use ECDSA P-256 keys (see [`ca_key`]); the leaf is RSA, as the
//! `rsa-sha256` signature algorithm requires.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, Days, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::sync::OnceLock;

/// Why the chain could not be made or a body not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// Key generation or import failed.
    #[error("key: {0}")]
    Key(String),
    /// rcgen refused the parameters.
    #[error("certificate: {0}")]
    Certificate(String),
    /// aws-lc-rs could not sign.
    #[error("signing failed")]
    Sign,
}

/// What the chain is issued for.
#[derive(Debug, Clone)]
pub(crate) struct ChainSpec<'a> {
    pub organization: &'a str,
    pub dns_name: &'a str,
    /// Where the intermediate is served (the leaf's AIA caIssuers URL).
    pub intermediate_url: &'a str,
    pub now: DateTime<Utc>,
}

/// The generated chain and the leaf's private key.
pub(crate) struct SigningChain {
    pub root_pem: String,
    pub intermediate_der: Vec<u8>,
    pub intermediate_pem: String,
    pub leaf_der: Vec<u8>,
    pub leaf_pem: String,
    signer: RsaKeyPair,
}

impl std::fmt::Debug for SigningChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningChain").finish_non_exhaustive()
    }
}

fn dn(cn: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, cn);
    dn
}

/// Valid from the day before `now` for `days` days (midnight UTC boundaries).
fn set_validity(p: &mut CertificateParams, now: DateTime<Utc>, days: i64) {
    let (y, m, d) = ymd(shifted(now, -1));
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(shifted(now, days));
    p.not_after = rcgen::date_time_ymd(y, m, d);
}

fn shifted(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let magnitude = Days::new(days.unsigned_abs());
    if days < 0 {
        now.checked_sub_days(magnitude)
    } else {
        now.checked_add_days(magnitude)
    }
    .unwrap_or(now)
}

fn ca_params(cn: &str, organization: &str, now: DateTime<Utc>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn, organization);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    p.use_authority_key_identifier_extension = true;
    set_validity(&mut p, now, 3650);
    p
}

/// The leaf's 2048-bit RSA key (PKCS#8), generated once per process: RSA generation
/// takes a noticeable fraction of a second, and emulators started in one process
/// (tests, the demo) need not each pay it. Each emulator still gets its own root,
/// intermediate and leaf certificate, so trusting one emulator's root trusts no other.
fn leaf_key_pkcs8() -> Result<&'static [u8], SigningError> {
    static KEY: OnceLock<Result<Vec<u8>, SigningError>> = OnceLock::new();
    KEY.get_or_init(|| {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .map(|k| k.serialize_der())
            .map_err(|e| SigningError::Key(e.to_string()))
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// The leaf key, both as rcgen's (to be certified) and aws-lc-rs's (to sign bodies).
fn leaf_key() -> Result<(RsaKeyPair, KeyPair), SigningError> {
    let pkcs8 = leaf_key_pkcs8()?;
    let key = KeyPair::try_from(pkcs8).map_err(|e| SigningError::Key(e.to_string()))?;
    let signer = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| SigningError::Key(e.to_string()))?;
    Ok((signer, key))
}

/// A CA key. ECDSA P-256 rather than RSA only because it is generated in
/// microseconds; verifiers accept either in a chain.
fn ca_key() -> Result<KeyPair, SigningError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| SigningError::Key(e.to_string()))
}

fn cert_err(e: rcgen::Error) -> SigningError {
    SigningError::Certificate(e.to_string())
}

impl SigningChain {
    /// Generates root, intermediate and leaf.
    pub(crate) fn generate(spec: &ChainSpec<'_>) -> Result<Self, SigningError> {
        let root_key = ca_key()?;
        let root_params = ca_params(
            "refsync Partner Center Emulator Root",
            "refsync emulator",
            spec.now,
        );
        let root = root_params.self_signed(&root_key).map_err(cert_err)?;
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let intermediate_key = ca_key()?;
        let intermediate_params = ca_params(
            "refsync Emulated Azure RSA TLS Issuing CA",
            spec.organization,
            spec.now,
        );
        let intermediate = intermediate_params
            .signed_by(&intermediate_key, &root_issuer)
            .map_err(cert_err)?;
        let intermediate_issuer = Issuer::from_params(&intermediate_params, &intermediate_key);

        let (signer, leaf_key) = leaf_key()?;
        let mut leaf_params =
            CertificateParams::new(vec![spec.dns_name.to_owned()]).map_err(cert_err)?;
        leaf_params.distinguished_name = dn(spec.dns_name, spec.organization);
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        set_validity(&mut leaf_params, spec.now, 365);
        leaf_params
            .custom_extensions
            .push(authority_info_access(spec.intermediate_url));
        let leaf = leaf_params
            .signed_by(&leaf_key, &intermediate_issuer)
            .map_err(cert_err)?;
        Ok(Self {
            root_pem: root.pem(),
            intermediate_der: intermediate.der().to_vec(),
            intermediate_pem: intermediate.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_pem: leaf.pem(),
            signer,
        })
    }

    /// Signs `body` (RSA PKCS#1 v1.5, SHA-256) and returns the base64 signature.
    pub(crate) fn sign(&self, body: &[u8]) -> Result<String, SigningError> {
        let mut signature = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                body,
                &mut signature,
            )
            .map_err(|_| SigningError::Sign)?;
        Ok(STANDARD.encode(signature))
    }
}

/// DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// An AuthorityInfoAccess extension (RFC 5280 §4.2.2.1) with one caIssuers URI;
/// rcgen has no helper for it.
fn authority_info_access(url: &str) -> CustomExtension {
    // id-ad-caIssuers, 1.3.6.1.5.5.7.48.2
    let method = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]);
    // GeneralName uniformResourceIdentifier, [6] IMPLICIT IA5String
    let location = tlv(0x86, url.as_bytes());
    let description = tlv(0x30, &[method, location].concat());
    let syntax = tlv(0x30, &description);
    // id-pe-authorityInfoAccess, 1.3.6.1.5.5.7.1.1
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], syntax)
}

/// The calendar date of `at`, as rcgen takes it.
fn ymd(at: DateTime<Utc>) -> (i32, u8, u8) {
    // Month and day always fit a u8.
    (at.year(), at.month() as u8, at.day() as u8)
}
