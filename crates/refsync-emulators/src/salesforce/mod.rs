//! A faithful local Salesforce org (REST API) for tests, the demo and users.

pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod org;
pub mod schema;
pub mod soql;
pub mod value;
