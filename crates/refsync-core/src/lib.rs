//! refsync's pure core: the values the rest of the system moves around and the
//! rules it applies to them. Nothing here performs I/O, spawns tasks or reads the
//! clock; callers pass time in.
//!
//! - [`ids`]: identifiers parsed once at the edge (`ReferralId`, `Etag`, `CrmRecordRef`, `SyncKey`).
//! - [`wire`]: helpers for Microsoft's wire formats (open enums, lenient dates, decimals).
//! - [`referral`]: the Partner Center Referral resource, lossless for unknown fields.
//! - [`status`]: referral status/substatus combinations and transitions.
//! - [`event`]: the Partner Center webhook event payload.
#![forbid(unsafe_code)]

pub mod event;
pub mod ids;
pub mod referral;
pub mod status;
pub mod wire;

pub use event::{EventName, WebhookEvent};
pub use ids::{CrmEntity, CrmRecordId, CrmRecordRef, EngagementId, Etag, ReferralId, SyncKey};
pub use referral::Referral;
pub use status::{ReferralStatus, ReferralSubstatus, StatusPair};
