//! refsync-crm
