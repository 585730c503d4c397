//! Faithful local stand-ins for the services refsync talks to, used by the test
//! suites, `refsync demo` and `refsync emulate`. They follow the reference notes
//! (`shared/reference/partner-center.md`, `crm.md`) — status codes, headers,
//! paging, ETags, error bodies — so that what passes against them works against
//! the real services.
//!
//! Shared infrastructure (this crate's foundation):
//!
//! - [`server`]: `serve(router, listener)` → [`server::EmulatorHandle`] (base URL,
//!   request logging, graceful shutdown). Every emulator runs through it.
//! - [`entra`]: a Microsoft Entra ID tenant: v1/v2 token endpoints (client
//!   credentials, ROPC, rotating refresh tokens, device code with a sign-in page),
//!   Entra's exact error bodies, and [`entra::EntraAuthority::authorize`] for the
//!   emulated resource servers. One authority can serve several emulators.
//! - [`faults`]: run-time fault injection (429 + `Retry-After`, 5xx, delays) as a
//!   middleware plus `/_emulator/faults`, answering in each service's error shape.
//! - [`odata`]: `$filter`/`$orderby`/`$select`/`$top` parsing and evaluation over JSON.
//! - [`cosell_data`]: deterministic, realistic customers and incoming referrals.
//!
//! The emulators built on these (one module each, added alongside):
//!
//! - [`partner_center`]: Referrals API, webhook registration, signed webhook delivery.
//! - `dataverse`: the Dynamics 365 Web API (leads, opportunities, accounts, …).
//! - `salesforce`: the Salesforce REST API.
//!
//! Conventions for those modules: mount the control API under `/_emulator/<name>`
//! (fault rules never touch `/_emulator/*`), take an `EntraAuthority` (shared or
//! own) for bearer validation, wrap the router with a [`faults::FaultInjector`]
//! using the service's responder from [`faults::responders`], and start it with
//! [`server::serve`].
#![forbid(unsafe_code)]

pub mod cosell_data;
pub mod dataverse;
pub mod entra;
pub mod faults;
pub mod odata;
pub mod partner_center;
pub mod salesforce;
pub mod server;
