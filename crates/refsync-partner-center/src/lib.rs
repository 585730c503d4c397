//! refsync-partner-center
