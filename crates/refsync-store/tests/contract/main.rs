//! The store contract: one suite, run against SQLite and PostgreSQL. Every test is an
//! async function taking a `Backend`; `contract_tests!` instantiates it per backend.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod support;
mod events;
mod links;
mod queue;
mod state;
