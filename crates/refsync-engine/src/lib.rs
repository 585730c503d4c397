//! refsync-engine (work in progress: see the engine branch)
#![forbid(unsafe_code)]
