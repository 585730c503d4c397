//! refsync library
