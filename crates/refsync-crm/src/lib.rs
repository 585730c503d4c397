//! CRM adapters behind one trait. The sync engine speaks only [`CrmConnector`];
//! `dataverse` (Dynamics 365) and `salesforce` implement it, each translating the
//! engine's plain field maps into its API's conventions (lookups, state changes,
//! stages, upsert by alternate key or external ID).
//!
//! - [`connector`]: the trait, the write shape and the error every adapter returns.
//! - [`dataverse`]: [`DataverseConnector`], the Dataverse Web API adapter (Dynamics 365),
//!   and its settings.
//! - [`salesforce`]: [`SalesforceConnector`], the REST API adapter, and its settings.
#![forbid(unsafe_code)]

pub mod connector;
pub mod dataverse;
pub mod salesforce;

pub use connector::{
    ApiUsage, CrmConnector, CrmError, CrmKind, Customer, CustomerUpsert, MatchOrCreate,
    RecordWrite, TrackedChanges, UpsertOutcome,
};
pub use dataverse::{DataverseConnector, DataverseSettings};
pub use salesforce::{SalesforceConnector, SalesforceSettings};
