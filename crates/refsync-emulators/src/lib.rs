//! refsync-emulators
#![forbid(unsafe_code)]

pub mod salesforce;
