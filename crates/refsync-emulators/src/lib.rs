//! refsync-emulators
#![forbid(unsafe_code)]

pub mod entra;
pub mod faults;
pub mod odata;
pub mod server;
