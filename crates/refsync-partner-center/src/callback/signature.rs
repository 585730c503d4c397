//! The signature headers of a callback and the check of the signature itself.
//!
//! Reference §2.5: the signature is `Signature <base64>` in `Authorization`, or in
//! `x-ms-signature` when the registration sets `SignatureTokenToMsSignatureHeader`
//! (the docs' C# reads that header with `Split(' ')[1]`, so it carries the scheme
//! too). `x-ms-signature-algorithm` names the algorithm; only `rsa-sha256`
//! (RSA PKCS#1 v1.5 with SHA-256, what .NET's `RSACryptoServiceProvider.VerifyData`
//! does) is accepted. The signature covers the raw body bytes.

use aws_lc_rs::signature::ParsedPublicKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderName};

use super::allow_list::UrlRefusal;
use super::rejection::CallbackRejection;

/// `x-ms-signature` (reference §2.5).
pub const MS_SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-ms-signature");
/// `x-ms-certificate-url` (reference §2.5).
pub const CERTIFICATE_URL_HEADER: HeaderName = HeaderName::from_static("x-ms-certificate-url");
/// `x-ms-signature-algorithm` (reference §2.5).
pub const SIGNATURE_ALGORITHM_HEADER: HeaderName =
    HeaderName::from_static("x-ms-signature-algorithm");

/// The only algorithm accepted, compared case-insensitively.
const RSA_SHA256: &str = "rsa-sha256";
/// The authentication scheme of the signature header.
const SIGNATURE_SCHEME: &str = "Signature";

/// Which header carried the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureHeaderStyle {
    /// `Authorization: Signature <base64>` (the default registration).
    Authorization,
    /// `x-ms-signature: Signature <base64>` (`SignatureTokenToMsSignatureHeader: true`).
    MsSignature,
}

impl SignatureHeaderStyle {
    /// A short label for metrics and storage.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Authorization => "authorization",
            Self::MsSignature => "x-ms-signature",
        }
    }
}

/// The signature-related headers exactly as received, kept with a verified event
/// so that its verification can be re-checked or audited later.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    signature: String,
    certificate_url: String,
    algorithm: String,
}

impl SignatureHeaders {
    /// The signature header's value (`Signature <base64>`).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `x-ms-certificate-url` value.
    pub fn certificate_url(&self) -> &str {
        &self.certificate_url
    }

    /// The `x-ms-signature-algorithm` value.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }
}

impl std::fmt::Debug for SignatureHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signature is not secret, but logs must not carry it (brief, STYLE).
        f.debug_struct("SignatureHeaders")
            .field("signature", &"<redacted>")
            .field("certificate_url", &self.certificate_url)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// The signature header, decoded.
pub(crate) struct PresentedSignature {
    pub(crate) style: SignatureHeaderStyle,
    pub(crate) header_value: String,
    pub(crate) bytes: Vec<u8>,
}

/// Why a header could not be read as one string.
enum HeaderProblem {
    Repeated,
    NotAscii,
}

/// The header's only value, if present. A repeated header is refused rather than
/// guessed at: two signatures or two certificate URLs mean someone is playing.
fn single_value<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, HeaderProblem> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderProblem::Repeated);
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| HeaderProblem::NotAscii)
}

/// Reads the signature: `x-ms-signature` when present (the `Authorization` header
/// may then belong to something else, e.g. a Power Automate trigger), otherwise
/// `Authorization`. No fallback from a malformed `x-ms-signature`.
pub(crate) fn read_signature(headers: &HeaderMap) -> Result<PresentedSignature, CallbackRejection> {
    let malformed = |_| CallbackRejection::MalformedSignature;
    let (style, value) = match single_value(headers, &MS_SIGNATURE_HEADER).map_err(malformed)? {
        Some(v) => (SignatureHeaderStyle::MsSignature, v),
        None => match single_value(headers, &AUTHORIZATION).map_err(malformed)? {
            Some(v) => (SignatureHeaderStyle::Authorization, v),
            None => return Err(CallbackRejection::MissingSignature),
        },
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // Auth schemes are case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case(SIGNATURE_SCHEME) {
        return Err(CallbackRejection::WrongSignatureScheme);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(CallbackRejection::MalformedSignature);
    }
    let bytes = STANDARD
        .decode(token)
        .map_err(|_| CallbackRejection::MalformedSignature)?;
    Ok(PresentedSignature {
        style,
        header_value: value.to_owned(),
        bytes,
    })
}

/// Reads `x-ms-certificate-url` (its allow-list check comes next, in the caller).
pub(crate) fn read_certificate_url(headers: &HeaderMap) -> Result<&str, CallbackRejection> {
    match single_value(headers, &CERTIFICATE_URL_HEADER) {
        Ok(Some(v)) if !v.is_empty() => Ok(v),
        Ok(_) => Err(CallbackRejection::MissingCertificateUrl),
        Err(_) => Err(CallbackRejection::CertificateUrlNotAllowed(
            UrlRefusal::Suspicious,
        )),
    }
}

/// Reads `x-ms-signature-algorithm` and requires `rsa-sha256`.
pub(crate) fn read_algorithm(headers: &HeaderMap) -> Result<&str, CallbackRejection> {
    match single_value(headers, &SIGNATURE_ALGORITHM_HEADER) {
        Ok(Some(v)) if v.eq_ignore_ascii_case(RSA_SHA256) => Ok(v),
        Ok(Some(v)) if !v.is_empty() => Err(CallbackRejection::UnsupportedSignatureAlgorithm),
        Ok(_) => Err(CallbackRejection::MissingSignatureAlgorithm),
        Err(_) => Err(CallbackRejection::UnsupportedSignatureAlgorithm),
    }
}

/// Bundles the received header values for a [`VerifiedCallback`](super::VerifiedCallback).
pub(crate) fn received_headers(
    signature: &PresentedSignature,
    certificate_url: &str,
    algorithm: &str,
) -> SignatureHeaders {
    SignatureHeaders {
        signature: signature.header_value.clone(),
        certificate_url: certificate_url.to_owned(),
        algorithm: algorithm.to_owned(),
    }
}

/// Checks an RSA PKCS#1 v1.5 SHA-256 signature over the raw body bytes with the
/// certificate's already parsed key (one RSA public-key operation, no parsing).
pub(crate) fn verify_body(
    key: &ParsedPublicKey,
    body: &[u8],
    signature: &[u8],
) -> Result<(), CallbackRejection> {
    key.verify_sig(body, signature)
        .map_err(|_| CallbackRejection::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn both_header_styles_are_read() {
        let s = read_signature(&headers(&[("authorization", "Signature AQID")])).unwrap();
        assert_eq!(s.style, SignatureHeaderStyle::Authorization);
        assert_eq!(s.bytes, [1, 2, 3]);
        let s = read_signature(&headers(&[("x-ms-signature", "Signature AQID")])).unwrap();
        assert_eq!(s.style, SignatureHeaderStyle::MsSignature);
        assert_eq!(s.header_value, "Signature AQID");
    }

    #[test]
    fn x_ms_signature_wins_over_authorization() {
        let s = read_signature(&headers(&[
            ("authorization", "Bearer abc"),
            ("x-ms-signature", "signature AQID"),
        ]))
        .unwrap();
        assert_eq!(s.style, SignatureHeaderStyle::MsSignature);
    }

    #[test]
    fn bad_signature_headers_are_told_apart() {
        let read = |pairs: &[(&str, &str)]| read_signature(&headers(pairs)).err();
        assert_eq!(read(&[]), Some(CallbackRejection::MissingSignature));
        assert_eq!(
            read(&[("authorization", "Bearer AQID")]),
            Some(CallbackRejection::WrongSignatureScheme)
        );
        assert_eq!(
            read(&[("x-ms-signature", "AQID")]),
            Some(CallbackRejection::WrongSignatureScheme)
        );
        assert_eq!(
            read(&[("authorization", "Signature")]),
            Some(CallbackRejection::MalformedSignature)
        );
        assert_eq!(
            read(&[("authorization", "Signature not*base64")]),
            Some(CallbackRejection::MalformedSignature)
        );
        assert_eq!(
            read(&[
                ("x-ms-signature", "Signature AQID"),
                ("x-ms-signature", "Signature AQID")
            ]),
            Some(CallbackRejection::MalformedSignature)
        );
    }

    #[test]
    fn algorithm_must_be_rsa_sha256() {
        let read = |pairs: &[(&str, &str)]| read_algorithm(&headers(pairs)).map(str::to_owned);
        assert_eq!(
            read(&[("x-ms-signature-algorithm", "rsa-sha256")]),
            Ok("rsa-sha256".to_owned())
        );
        assert_eq!(
            read(&[("x-ms-signature-algorithm", "RSA-SHA256")]),
            Ok("RSA-SHA256".to_owned())
        );
        assert_eq!(read(&[]), Err(CallbackRejection::MissingSignatureAlgorithm));
        for other in [
            "rsa-sha1",
            "rsa-sha512",
            "hmac-sha256",
            "rsa",
            "rsa-sha256x",
        ] {
            assert_eq!(
                read(&[("x-ms-signature-algorithm", other)]),
                Err(CallbackRejection::UnsupportedSignatureAlgorithm),
                "{other}"
            );
        }
    }

    #[test]
    fn certificate_url_must_be_present_once() {
        assert_eq!(
            read_certificate_url(&headers(&[])),
            Err(CallbackRejection::MissingCertificateUrl)
        );
        assert_eq!(
            read_certificate_url(&headers(&[("x-ms-certificate-url", "")])),
            Err(CallbackRejection::MissingCertificateUrl)
        );
        assert!(matches!(
            read_certificate_url(&headers(&[
                ("x-ms-certificate-url", "https://a/cert/x"),
                ("x-ms-certificate-url", "https://b/cert/x"),
            ])),
            Err(CallbackRejection::CertificateUrlNotAllowed(_))
        ));
    }

    #[test]
    fn debug_hides_the_signature() {
        let h = SignatureHeaders {
            signature: "Signature SECRETLOOKING".into(),
            certificate_url: "https://x/cert/a".into(),
            algorithm: "rsa-sha256".into(),
        };
        assert!(!format!("{h:?}").contains("SECRETLOOKING"));
    }
}
