//! SOQL: parsing ([`parse`]) and running queries against the org ([`eval`]).

pub mod eval;
pub mod parse;

pub use eval::{QueryEnv, QueryResult, record_url, run};
pub use parse::{Query, parse};
