//! refsync-outbound
