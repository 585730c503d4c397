//! Why a callback was refused: one variant per check, each with the HTTP status
//! to answer and a short stable label for metrics and logs.
//!
//! Messages never contain the body or the signature. They may name a URL or a
//! certificate problem, which is safe to log; the HTTP layer should still answer
//! with an opaque body carrying at most [`CallbackRejection::reason`].

use http::StatusCode;
use thiserror::Error;

/// Why a certificate could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchFailure {
    /// The fetch (redirects included) took longer than `fetch_timeout`.
    #[error("timed out")]
    Timeout,
    /// The server answered with a non-success status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The file is larger than `max_certificate_bytes`.
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    /// A redirect pointed outside the allow-list (or was malformed, or too many).
    #[error("redirect refused")]
    RedirectRefused,
    /// A connection or protocol error.
    #[error("transport error")]
    Transport,
    /// The file is neither a DER certificate nor PEM certificates.
    #[error("not a DER or PEM certificate")]
    NotACertificate,
}

/// A refused callback. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallbackRejection {
    /// The body exceeds `max_body_bytes` (413).
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Neither `x-ms-signature` nor `Authorization` is present (401).
    #[error("no x-ms-signature or Authorization header")]
    MissingSignature,
    /// The signature header's scheme is not `Signature` (401).
    #[error("signature header scheme is not Signature")]
    WrongSignatureScheme,
    /// The signature header is repeated, not ASCII, or not `Signature <base64>` (401).
    #[error("signature header is malformed")]
    MalformedSignature,
    /// `x-ms-certificate-url` is absent (400, as in the documented sample).
    #[error("no x-ms-certificate-url header")]
    MissingCertificateUrl,
    /// `x-ms-certificate-url` is not under the allow-list (401); never fetched.
    #[error("certificate URL refused: {0}")]
    CertificateUrlNotAllowed(super::allow_list::UrlRefusal),
    /// `x-ms-signature-algorithm` is absent (400, as in the documented sample).
    #[error("no x-ms-signature-algorithm header")]
    MissingSignatureAlgorithm,
    /// `x-ms-signature-algorithm` is not `rsa-sha256` (401).
    #[error("signature algorithm is not rsa-sha256")]
    UnsupportedSignatureAlgorithm,
    /// The certificate could not be fetched (401).
    #[error("certificate unavailable: {0}")]
    CertificateUnavailable(FetchFailure),
    /// The chain does not lead to a configured trust anchor (401).
    #[error("certificate chain not trusted: {0}")]
    UntrustedChain(String),
    /// A certificate in the chain has expired (401).
    #[error("certificate expired")]
    CertificateExpired,
    /// A certificate in the chain is not valid yet (401).
    #[error("certificate not yet valid")]
    CertificateNotYetValid,
    /// The leaf's (extended) key usage does not allow signing callbacks (401).
    #[error("certificate key usage does not allow this use")]
    WrongKeyUsage,
    /// The leaf is not valid for the configured DNS name (401).
    #[error("certificate is not valid for the configured DNS name")]
    WrongDnsName,
    /// The leaf does not name the configured organization (401).
    #[error("certificate does not name the configured organization")]
    WrongOrganization,
    /// The leaf's key is not an RSA key of 2048 to 8192 bits (401).
    #[error("certificate key is not an RSA key of 2048-8192 bits")]
    UnsupportedKey,
    /// The signature does not match the body (401).
    #[error("signature does not match the body")]
    BadSignature,
    /// The signature is valid but the body is not a webhook event (400).
    #[error("body is not a webhook event: {0}")]
    MalformedEvent(String),
}

impl CallbackRejection {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingCertificateUrl
            | Self::MissingSignatureAlgorithm
            | Self::MalformedEvent(_) => StatusCode::BAD_REQUEST,
            Self::MissingSignature
            | Self::WrongSignatureScheme
            | Self::MalformedSignature
            | Self::CertificateUrlNotAllowed(_)
            | Self::UnsupportedSignatureAlgorithm
            | Self::CertificateUnavailable(_)
            | Self::UntrustedChain(_)
            | Self::CertificateExpired
            | Self::CertificateNotYetValid
            | Self::WrongKeyUsage
            | Self::WrongDnsName
            | Self::WrongOrganization
            | Self::UnsupportedKey
            | Self::BadSignature => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short stable label (`snake_case`) for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::MissingSignature => "missing_signature",
            Self::WrongSignatureScheme => "wrong_signature_scheme",
            Self::MalformedSignature => "malformed_signature",
            Self::MissingCertificateUrl => "missing_certificate_url",
            Self::CertificateUrlNotAllowed(_) => "certificate_url_not_allowed",
            Self::MissingSignatureAlgorithm => "missing_signature_algorithm",
            Self::UnsupportedSignatureAlgorithm => "unsupported_signature_algorithm",
            Self::CertificateUnavailable(_) => "certificate_unavailable",
            Self::UntrustedChain(_) => "untrusted_chain",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::WrongKeyUsage => "wrong_key_usage",
            Self::WrongDnsName => "wrong_dns_name",
            Self::WrongOrganization => "wrong_organization",
            Self::UnsupportedKey => "unsupported_key",
            Self::BadSignature => "bad_signature",
            Self::MalformedEvent(_) => "malformed_event",
        }
    }

    /// Every reason label, for pre-registering metrics so dashboards see zeros.
    pub const REASONS: [&'static str; 18] = [
        "body_too_large",
        "missing_signature",
        "wrong_signature_scheme",
        "malformed_signature",
        "missing_certificate_url",
        "certificate_url_not_allowed",
        "missing_signature_algorithm",
        "unsupported_signature_algorithm",
        "certificate_unavailable",
        "untrusted_chain",
        "certificate_expired",
        "certificate_not_yet_valid",
        "wrong_key_usage",
        "wrong_dns_name",
        "wrong_organization",
        "unsupported_key",
        "bad_signature",
        "malformed_event",
    ];
}

#[cfg(test)]
mod tests {
    use super::super::allow_list::UrlRefusal;
    use super::*;

    fn all() -> Vec<CallbackRejection> {
        use CallbackRejection::*;
        vec![
            BodyTooLarge { limit: 1 },
            MissingSignature,
            WrongSignatureScheme,
            MalformedSignature,
            MissingCertificateUrl,
            CertificateUrlNotAllowed(UrlRefusal::NotAllowed),
            MissingSignatureAlgorithm,
            UnsupportedSignatureAlgorithm,
            CertificateUnavailable(FetchFailure::Timeout),
            UntrustedChain("x".into()),
            CertificateExpired,
            CertificateNotYetValid,
            WrongKeyUsage,
            WrongDnsName,
            WrongOrganization,
            UnsupportedKey,
            BadSignature,
            MalformedEvent("x".into()),
        ]
    }

    #[test]
    fn reasons_are_distinct_and_listed() {
        let reasons: Vec<&str> = all().iter().map(CallbackRejection::reason).collect();
        assert_eq!(reasons, CallbackRejection::REASONS);
        let mut dedup = reasons.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), reasons.len());
    }

    #[test]
    fn statuses_follow_the_documented_sample() {
        let status = |r: &CallbackRejection| r.status().as_u16();
        for r in all() {
            let expected = match r.reason() {
                "body_too_large" => 413,
                "missing_certificate_url" | "missing_signature_algorithm" | "malformed_event" => {
                    400
                }
                _ => 401,
            };
            assert_eq!(status(&r), expected, "{}", r.reason());
        }
    }
}
