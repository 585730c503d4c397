//! The store's one error type. Nothing here ever carries a connection password:
//! URLs are redacted before they are put in an error, and connection failures are
//! scrubbed of the password in case a driver echoes it.

use refsync_core::SyncKey;
use thiserror::Error;

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The URL's scheme names no supported backend.
    #[error("unsupported store URL {url}: expected sqlite:// or postgres://")]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the store at {url}: {detail}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The driver's message, password removed.
        detail: String,
    },
    /// Migrations failed on open.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Someone else saved the link since it was loaded; reload and merge again.
    #[error("link {link} was saved by someone else (expected version {expected})")]
    VersionConflict {
        /// The link's id.
        link: i64,
        /// The version the caller loaded.
        expected: i64,
    },
    /// Another link already holds this referral or CRM record.
    #[error("another link already holds this referral or CRM record")]
    LinkKeyTaken,
    /// The claim's lease is no longer ours (it expired and another worker took the key).
    #[error("lease on {key} was lost")]
    LeaseLost {
        /// The key.
        key: SyncKey,
    },
    /// A stored value could not be read back into its type.
    #[error("stored value is malformed: {0}")]
    Corrupt(String),
    /// The store's batching writer has stopped (the store is shutting down).
    #[error("the store's event writer has stopped")]
    WriterStopped,
    /// The transaction a batched write ran in could not be committed, so the write
    /// did not happen (SQLite group commit); the message is the database's.
    #[error("the store could not commit a batch of writes: {0}")]
    CommitFailed(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// True for a unique-constraint violation, which some callers turn into a domain error.
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        err.as_database_error()
            .is_some_and(|e| e.is_unique_violation())
    }
}

/// A URL with any password replaced by `***`, safe to log or show.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = u.set_password(Some("***"));
            }
            // A password can also ride in the query string (libpq's `password=`).
            if u.query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"))
            {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        // Not a URL we can take apart: show only the scheme.
        Err(_) => match raw.split_once(':') {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}:<redacted>")
            }
            _ => "<redacted>".to_owned(),
        },
    }
}

/// The password in a URL, if any, so it can be scrubbed from driver messages.
fn url_password(raw: &str) -> Vec<String> {
    let Ok(u) = url::Url::parse(raw) else {
        return Vec::new();
    };
    let mut out: Vec<String> = u.password().map(str::to_owned).into_iter().collect();
    if let Some(Ok(decoded)) = u
        .password()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8())
    {
        out.push(decoded.into_owned());
    }
    out.extend(
        u.query_pairs()
            .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
            .map(|(_, v)| v.into_owned()),
    );
    out.retain(|p| !p.is_empty());
    out
}

/// Builds a `Connect` error with the URL redacted and the password scrubbed from the detail.
pub(crate) fn connect_error(raw_url: &str, err: impl std::fmt::Display) -> StoreError {
    let mut detail = err.to_string();
    for p in url_password(raw_url) {
        detail = detail.replace(&p, "***");
    }
    StoreError::Connect {
        url: redact_url(raw_url),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        let raw = "postgres://refsync:s3cr%3Et@db.example:5432/refsync?sslmode=require";
        let shown = redact_url(raw);
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("refsync:***@db.example"), "{shown}");
        let q = redact_url("postgres://db/x?user=a&password=hunter2");
        assert!(!q.contains("hunter2"), "{q}");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn connect_errors_scrub_an_echoed_password() {
        let raw = "postgres://u:s3cr%3Et@h/db";
        let e = connect_error(raw, "auth failed for u:s3cr>t and s3cr%3Et");
        let shown = e.to_string();
        assert!(!shown.contains("s3cr"), "{shown}");
    }
}
