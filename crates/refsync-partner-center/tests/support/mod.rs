//! The shared test PKI lives in the crate (feature `test-support`) so the service
//! tests can use it too.
#![allow(unused_imports)]

pub use refsync_partner_center::test_pki::*;
