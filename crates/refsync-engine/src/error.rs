//! [`SyncError`]: why one sync of one key failed, and whether waiting can fix it.
//!
//! The worker asks two questions of every failure: [`SyncError::is_transient`]
//! (retry later with backoff, or dead-letter now) and [`SyncError::retry_after`]
//! (the least the remote service asked us to wait). Permanent failures are the ones
//! only a change of data or configuration can fix: the CRM refusing the data, a
//! mapping that cannot convert a value, a Partner Center 400.

use refsync_core::MappingError;
use refsync_crm::CrmError;
use refsync_partner_center::ReferralsError;
use refsync_store::StoreError;
use std::time::Duration;
use thiserror::Error;

/// Why a sync failed.
#[derive(Debug, Error)]
pub enum SyncError {
    /// A Referrals API call failed.
    #[error("Partner Center: {0}")]
    PartnerCenter(#[from] ReferralsError),
    /// A CRM call failed.
    #[error("CRM: {0}")]
    Crm(#[from] CrmError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The mapping cannot convert a value or lacks a record type.
    #[error("mapping: {0}")]
    Mapping(#[from] MappingError),
    /// The referral changed between every read and write (412 each time).
    #[error("the referral changed during each of {attempts} attempts to write it (412)")]
    Contention {
        /// How many writes were refused.
        attempts: u32,
    },
    /// The data cannot be synced as it is (e.g. a CRM record to share that has no
    /// customer); the message says what is missing.
    #[error("{0}")]
    Unsyncable(String),
}

impl SyncError {
    /// True when the same sync may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::PartnerCenter(e) => {
                // A 412 or a referral that vanished under our write: the next pass
                // re-reads and decides again.
                e.is_transient()
                    || matches!(
                        e,
                        ReferralsError::PreconditionFailed { .. } | ReferralsError::NotFound { .. }
                    )
            }
            SyncError::Crm(e) => e.is_transient(),
            SyncError::Store(e) => matches!(
                e,
                StoreError::VersionConflict { .. }
                    | StoreError::LeaseLost { .. }
                    | StoreError::WriterStopped
                    | StoreError::Backend(_)
                    | StoreError::Connect { .. }
            ),
            SyncError::Contention { .. } => true,
            SyncError::Mapping(_) | SyncError::Unsyncable(_) => false,
        }
    }

    /// How long the remote service asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::PartnerCenter(ReferralsError::Call(e)) => e.retry_after(),
            SyncError::Crm(CrmError::Throttled { retry_after }) => *retry_after,
            _ => None,
        }
    }

    /// A short label for metrics: which side failed.
    pub fn side(&self) -> &'static str {
        match self {
            SyncError::PartnerCenter(_) | SyncError::Contention { .. } => "partner_center",
            SyncError::Crm(_) => "crm",
            SyncError::Store(_) => "store",
            SyncError::Mapping(_) | SyncError::Unsyncable(_) => "data",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::{CrmEntity, ReferralId};

    #[test]
    fn only_waiting_can_fix_a_transient_error() {
        let id = ReferralId::parse("r-1").unwrap();
        assert!(
            SyncError::from(ReferralsError::PreconditionFailed { id: id.clone() }).is_transient()
        );
        assert!(SyncError::Contention { attempts: 3 }.is_transient());
        assert!(SyncError::from(CrmError::Unavailable("503".into())).is_transient());
        assert!(
            SyncError::from(StoreError::VersionConflict {
                link: 1,
                expected: 2
            })
            .is_transient()
        );
        assert!(
            !SyncError::from(CrmError::Rejected {
                code: None,
                message: "Required fields are missing".into()
            })
            .is_transient()
        );
        assert!(!SyncError::from(MappingError::MissingEntity(CrmEntity::Lead)).is_transient());
        assert!(!SyncError::from(StoreError::LinkKeyTaken).is_transient());
        assert!(
            !SyncError::from(ReferralsError::Decode {
                detail: "not a referral".into()
            })
            .is_transient()
        );
    }

    #[test]
    fn throttling_says_how_long_to_wait() {
        let e = SyncError::from(CrmError::Throttled {
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.side(), "crm");
    }
}
