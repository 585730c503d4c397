//! Partner Center adapters for refsync.
//!
//! - [`callback`]: the webhook callback verifier, refsync's security boundary.
//!   An [`UnverifiedCallback`](callback::UnverifiedCallback) becomes a
//!   [`VerifiedCallback`](callback::VerifiedCallback) only through
//!   [`CallbackVerifier::verify_callback`](callback::CallbackVerifier::verify_callback),
//!   which checks the headers, the certificate URL allow-list, the certificate
//!   chain and the RSA signature over the raw body (reference §2.5).
//! - [`referrals`]: the co-sell Referrals API client (get, list with OData paging,
//!   create with `MS-RequestId`, JSON Patch with `If-Match`, the obsolete PUT).
//! - [`registration`]: the webhook registration client (view, create, update,
//!   event names, test events and their delivery status).
//!
//! - `test_pki` (feature `test-support`): a test PKI, certificate server and callback
//!   signing shared by the callback tests and the service's endpoint tests.
//!
//! Both clients call through [`refsync_outbound::ApiClient`], which supplies
//! tokens, timeouts, retries, pacing and metrics.
#![forbid(unsafe_code)]

pub mod callback;
pub mod referrals;
pub mod registration;
#[cfg(feature = "test-support")]
pub mod test_pki;

pub use callback::{
    CallbackRejection, CallbackVerifier, UnverifiedCallback, VerifiedCallback, VerifierConfig,
};
pub use referrals::{ReferralQuery, ReferralsClient, ReferralsError};
pub use registration::{RegistrationClient, RegistrationError, RegistrationRequest};
