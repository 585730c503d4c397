//! The refsync service and its command line.
//!
//! - [`config`]: the `refsync.toml` model, layered defaults → file → `REFSYNC_*` environment.
//! - [`telemetry`]: tracing set-up (human or JSON logs).
//! - [`emulate`]: `refsync emulate …`, the bundled emulators on their own.
//! - [`cli`]: the clap command tree; `main.rs` only parses and dispatches.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod emulate;
pub mod telemetry;
