//! refsync's pure core: the values the rest of the system moves around and the
//! rules it applies to them. Nothing here performs I/O, spawns tasks or reads the
//! clock; callers pass time in.
//!
//! - [`ids`]: identifiers parsed once at the edge (`ReferralId`, `Etag`, `CrmRecordRef`, `SyncKey`).
//! - [`wire`]: helpers for Microsoft's wire formats (open enums, lenient dates, decimals).
//! - [`referral`]: the Partner Center Referral resource, lossless for unknown fields.
//! - [`status`]: referral status/substatus combinations and transitions.
//! - [`event`]: the Partner Center webhook event payload.
//! - [`crm_record`]: a CRM record (lead, opportunity, account, contact) as plain values.
//! - [`mapping`]: the TOML field mapping between referrals and CRM records, validated once.
//! - [`merge`]: the three-way merge of a referral, a CRM record and their last agreed values.
#![forbid(unsafe_code)]

pub mod crm_record;
pub mod event;
pub mod ids;
pub mod mapping;
pub mod merge;
pub mod referral;
pub mod status;
pub mod wire;

pub use crm_record::CrmRecord;
pub use event::{EventName, WebhookEvent};
pub use ids::{CrmEntity, CrmRecordId, CrmRecordRef, EngagementId, Etag, ReferralId, SyncKey};
pub use mapping::{EntityMapping, FieldValues, Mapping, MappingError};
pub use merge::{CrmSide, MergePlan, PcSide, merge};
pub use referral::Referral;
pub use status::{ReferralStatus, ReferralSubstatus, StatusPair};
