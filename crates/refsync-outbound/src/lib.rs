//! Outbound HTTP shared by every refsync API client (Referrals API, webhook
//! registration, Dataverse, Salesforce).
//!
//! - [`call`]: [`ApiClient`](call::ApiClient), the one way to call an API — per-API
//!   timeouts, retries of transient failures only where a repeat is safe
//!   ([`Idempotency`](call::Idempotency)), `Retry-After`, a fresh token after a 401,
//!   pacing under the server's limits, `MS-CorrelationId`/`MS-RequestId`, tracing
//!   spans and metrics; failures as [`CallError`](call::CallError).
//! - [`token`]: the token cache (per authority, tenant, client and audience; one
//!   fetch at a time per key), [`TokenSource`](token::TokenSource) for clients,
//!   [`RefreshTokenVault`](token::RefreshTokenVault) for the stored sign-in, and
//!   [`TokenHealth`](token::TokenHealth) for `refsync status`.
//! - [`entra`]: Microsoft Entra ID grants — client credentials, rotating refresh
//!   token, device-code login, legacy password — on the v1 or v2 endpoint.
//!
//! Secrets (client secrets, passwords, access and refresh tokens) are held as
//! [`secrecy::SecretString`] and never reach `Debug`, logs or error messages.
#![forbid(unsafe_code)]

pub mod call;
pub mod entra;
pub mod token;

pub use call::{
    ApiClient, ApiConfig, ApiRequest, ApiResponse, CallError, Idempotency, Pacing, RetryPolicy,
};
pub use entra::{Audience, EndpointVersion, Entra, EntraApp, Tenant};
pub use token::{AccessToken, RefreshTokenVault, TokenCache, TokenError, TokenHealth, TokenSource};
