//! Small named values: watermarks (how far the reconciler and the CRM poller have
//! read) and encrypted secrets (refresh tokens).

use chrono::{DateTime, Utc};
use std::fmt;

/// The Partner Center reconciler's watermark name.
pub const WATERMARK_RECONCILER_PARTNER_CENTER: &str = "reconciler.partner_center";
/// The CRM poller's watermark name.
pub const WATERMARK_POLLER_CRM: &str = "poller.crm";

/// How far a reader has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Everything changed at or before this time has been seen.
    pub value: DateTime<Utc>,
    /// An opaque continuation (e.g. a delta link), when the source has one.
    pub cursor: Option<String>,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

/// A secret as stored: ciphertext the caller encrypted. Its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSecret")
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_the_bytes() {
        let s = StoredSecret {
            ciphertext: b"refresh-token-ciphertext".to_vec(),
            updated_at: DateTime::<Utc>::MIN_UTC,
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("<24 bytes>"));
        assert!(!shown.contains("refresh"));
    }
}
