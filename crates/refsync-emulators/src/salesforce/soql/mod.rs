//! SOQL: parsing ([`parse`]) and running queries against the org ([`eval`]).

pub mod ast;
pub mod eval;
pub mod filter;
pub mod lexer;
pub mod parse;

pub use eval::{QueryEnv, record_url, run};
pub use parse::parse;
