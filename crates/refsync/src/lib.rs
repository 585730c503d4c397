//! The refsync service and its command line.
//!
//! - [`config`]: the `refsync.toml` model, layered defaults → file → `REFSYNC_*` environment.
//! - [`telemetry`]: tracing set-up (human or JSON logs).
//! - [`emulate`]: `refsync emulate …`, the bundled emulators on their own.
//! - [`intake`]: webhook callback → verified → durably stored and enqueued.
//! - [`server`]: the HTTP routes (webhook, health, readiness, metrics).
//! - [`service`]: `refsync serve`, and the in-process service tests and the demo start.
//! - [`status`]: `refsync status`.
//! - [`webhooks`]: `refsync webhooks register|show|update|test`.
//! - [`operator`]: `refsync sync|audit|dead-letters|reconcile|mapping check`.
//! - [`bench`]: `refsync bench …`, the measured figures in the README.
//! - [`cli`]: the clap command tree; `main.rs` only parses and dispatches.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod emulate;
pub mod engine;
pub mod intake;
pub mod operator;
pub mod server;
pub mod service;
pub mod signin;
pub mod status;
pub mod telemetry;
pub mod webhooks;
