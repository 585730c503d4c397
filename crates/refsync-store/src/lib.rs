//! refsync-store
