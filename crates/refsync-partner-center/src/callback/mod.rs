//! The webhook callback verifier: refsync's security boundary.
//!
//! An [`UnverifiedCallback`] (the relevant headers and the raw body) becomes a
//! [`VerifiedCallback`] only through [`CallbackVerifier::verify_callback`]; the
//! verified type has no public constructor, so nothing unverified can reach the
//! queue. The checks run in this order, each failure a distinct
//! [`CallbackRejection`] with its status and reason label (DESIGN.md "Webhook
//! intake", reference §2.5):
//!
//! 1. body larger than `max_body_bytes` → 413;
//! 2. signature in `x-ms-signature` or `Authorization`, scheme `Signature` → 401;
//! 3. `x-ms-certificate-url` present (400) and under the allow-list (401);
//! 4. `x-ms-signature-algorithm` present (400) and `rsa-sha256` (401);
//! 5. certificate fetched (or cached) and its chain, validity, key usage, DNS
//!    name, organization and key type checked → 401;
//! 6. RSA PKCS#1 v1.5 SHA-256 signature over the raw body bytes → 401;
//! 7. the body parsed as a webhook event → 400.
//!
//! Unlike Microsoft's published sample, which only looked at the certificate's
//! issuer and never checked the body, the signature over the exact bytes
//! received is what lets an event in.

pub mod allow_list;
mod certificates;
mod chain;
pub mod config;
mod rejection;
mod signature;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use refsync_core::WebhookEvent;
use refsync_core::event::EventError;

use certificates::CertificateStore;

pub use allow_list::{AllowList, PlainHttp, PrefixError, UrlPrefix, UrlRefusal};
pub use config::{
    CertificateUrlPrefix, DEFAULT_CERTIFICATE_URL_PREFIX, DEFAULT_DNS_NAME,
    DEFAULT_INTERMEDIATE_URL_PREFIX, DEFAULT_ORGANIZATION, EkuPolicy, IntermediateUrlPrefix,
    TrustAnchorSource, VerifierConfig, VerifierConfigError,
};
pub use rejection::{CallbackRejection, FetchFailure};
pub use signature::{
    CERTIFICATE_URL_HEADER, MS_SIGNATURE_HEADER, SIGNATURE_ALGORITHM_HEADER, SignatureHeaderStyle,
    SignatureHeaders,
};

/// Counter of refused callbacks, labelled `reason`.
pub const REJECTED_METRIC: &str = "refsync_webhook_rejected_total";
/// Counter of accepted callbacks, labelled `header` (which header style).
pub const ACCEPTED_METRIC: &str = "refsync_webhook_accepted_total";

/// A callback as received: the headers the verifier reads, and the raw body.
#[derive(Clone)]
pub struct UnverifiedCallback {
    headers: HeaderMap,
    body: Bytes,
}

impl UnverifiedCallback {
    /// Keeps the four signature-related headers (all their values) and the body.
    pub fn new(headers: &HeaderMap, body: Bytes) -> Self {
        let mut kept = HeaderMap::new();
        for name in [
            &MS_SIGNATURE_HEADER,
            &AUTHORIZATION,
            &CERTIFICATE_URL_HEADER,
            &SIGNATURE_ALGORITHM_HEADER,
        ] {
            for value in headers.get_all(name) {
                kept.append(name.clone(), value.clone());
            }
        }
        Self {
            headers: kept,
            body,
        }
    }

    /// The body length in bytes.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }
}

impl fmt::Debug for UnverifiedCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the body nor the signature belongs in logs.
        f.debug_struct("UnverifiedCallback")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A callback whose signature was verified over its raw body, and whose body is
/// a webhook event. Only [`CallbackVerifier::verify_callback`] makes one.
#[derive(Clone)]
pub struct VerifiedCallback {
    event: WebhookEvent,
    body: Bytes,
    headers: SignatureHeaders,
    style: SignatureHeaderStyle,
}

impl VerifiedCallback {
    /// The parsed event.
    pub fn event(&self) -> &WebhookEvent {
        &self.event
    }

    /// The raw body, exactly the bytes the signature covers.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The signature-related headers as received.
    pub fn signature_headers(&self) -> &SignatureHeaders {
        &self.headers
    }

    /// Which header carried the signature.
    pub fn header_style(&self) -> SignatureHeaderStyle {
        self.style
    }

    /// Takes the parts, e.g. to store them.
    pub fn into_parts(self) -> (WebhookEvent, Bytes, SignatureHeaders, SignatureHeaderStyle) {
        (self.event, self.body, self.headers, self.style)
    }
}

impl fmt::Debug for VerifiedCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCallback")
            .field("event", &self.event)
            .field("body_len", &self.body.len())
            .field("headers", &self.headers)
            .field("style", &self.style)
            .finish()
    }
}

/// Verifies Partner Center webhook callbacks. Cheap to clone; clones share the
/// certificate cache.
#[derive(Clone)]
pub struct CallbackVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    certificate_allow_list: AllowList,
    max_body_bytes: usize,
    certificates: CertificateStore,
}

impl fmt::Debug for CallbackVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackVerifier")
            .field("certificate_allow_list", &self.inner.certificate_allow_list)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl CallbackVerifier {
    /// Builds a verifier: loads trust anchors and intermediates, checks names and
    /// limits, builds the certificate HTTP client.
    pub fn new(config: &VerifierConfig) -> Result<Self, VerifierConfigError> {
        if config.certificate_url_prefixes.is_empty() {
            return Err(VerifierConfigError::NoCertificatePrefixes);
        }
        if config.max_body_bytes == 0 {
            return Err(VerifierConfigError::ZeroLimit("max_body_bytes"));
        }
        metrics::describe_counter!(
            REJECTED_METRIC,
            "Webhook callbacks refused by the verifier, by reason"
        );
        metrics::describe_counter!(
            ACCEPTED_METRIC,
            "Webhook callbacks whose signature and event verified"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                certificate_allow_list: config.certificate_allow_list(),
                max_body_bytes: config.max_body_bytes,
                certificates: CertificateStore::new(config)?,
            }),
        })
    }

    /// The body size limit, for the HTTP layer's own limit on reading the body.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// Runs every check (see the module docs) with `now` as the current time for
    /// certificate validity and the certificate cache. Counts and logs refusals.
    pub async fn verify_callback(
        &self,
        callback: UnverifiedCallback,
        now: DateTime<Utc>,
    ) -> Result<VerifiedCallback, CallbackRejection> {
        match self.run_checks(callback, now).await {
            Ok(verified) => {
                metrics::counter!(ACCEPTED_METRIC, "header" => verified.style.as_str())
                    .increment(1);
                Ok(verified)
            }
            Err(rejection) => {
                metrics::counter!(REJECTED_METRIC, "reason" => rejection.reason()).increment(1);
                tracing::warn!(
                    reason = rejection.reason(),
                    status = rejection.status().as_u16(),
                    detail = %rejection,
                    "webhook callback rejected"
                );
                Err(rejection)
            }
        }
    }

    async fn run_checks(
        &self,
        callback: UnverifiedCallback,
        now: DateTime<Utc>,
    ) -> Result<VerifiedCallback, CallbackRejection> {
        let UnverifiedCallback { headers, body } = callback;
        let inner = &*self.inner;
        if body.len() > inner.max_body_bytes {
            return Err(CallbackRejection::BodyTooLarge {
                limit: inner.max_body_bytes,
            });
        }
        let presented = signature::read_signature(&headers)?;
        let certificate_url = signature::read_certificate_url(&headers)?;
        let url = inner
            .certificate_allow_list
            .check(certificate_url)
            .map_err(CallbackRejection::CertificateUrlNotAllowed)?;
        let algorithm = signature::read_algorithm(&headers)?;

        let certificate = inner.certificates.trusted_certificate(&url, now).await?;
        certificate.check_validity(now)?;
        signature::verify_body(certificate.key(), &body, &presented.bytes)?;

        let event = WebhookEvent::from_slice(&body).map_err(malformed_event)?;
        Ok(VerifiedCallback {
            event,
            headers: signature::received_headers(&presented, certificate_url, algorithm),
            style: presented.style,
            body,
        })
    }
}

/// Describes a malformed event without quoting the body (values are left out).
fn malformed_event(e: EventError) -> CallbackRejection {
    let detail = match e {
        EventError::NotAnObject => "not a JSON object".to_owned(),
        EventError::Missing(name) => format!("{name} is missing or not a string"),
        EventError::BadDate(_) => "ResourceChangeUtcDate is not a date-time".to_owned(),
        EventError::NotAReferralUri(_) | EventError::BadReferralId(_) => {
            "ResourceUri does not name a referral".to_owned()
        }
    };
    CallbackRejection::MalformedEvent(detail)
}
