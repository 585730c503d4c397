//! refsync-emulators
