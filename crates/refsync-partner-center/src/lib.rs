//! Partner Center adapters for refsync.
//!
//! - [`callback`]: the webhook callback verifier, refsync's security boundary.
//!   An [`UnverifiedCallback`](callback::UnverifiedCallback) becomes a
//!   [`VerifiedCallback`](callback::VerifiedCallback) only through
//!   [`CallbackVerifier::verify_callback`](callback::CallbackVerifier::verify_callback),
//!   which checks the headers, the certificate URL allow-list, the certificate
//!   chain and the RSA signature over the raw body (reference §2.5).
//!
//! The Referrals API client and the webhook-registration client will live here too.
#![forbid(unsafe_code)]

pub mod callback;

pub use callback::{
    CallbackRejection, CallbackVerifier, UnverifiedCallback, VerifiedCallback, VerifierConfig,
};
