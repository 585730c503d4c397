//! What the service's integration tests share: a store on either backend, a
//! service on an ephemeral port, and a snapshot of everything the store holds so a
//! test can prove a refused request left it unchanged.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync::config::Config;
use refsync::service::Service;
use refsync_store::test_harness::{TestSqlite, postgres_url_for_test, sqlite_url_for_test};
use refsync_store::{EventFilter, Store};
use std::sync::Arc;

/// The store backends every suite runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store URL for one test, and what keeps it alive.
pub struct TestStore {
    pub url: String,
    _sqlite: Option<TestSqlite>,
}

/// A fresh store of the given backend. PostgreSQL is started by the harness; the
/// test is skipped (returns `None`) only when `REFSYNC_SKIP_POSTGRES=1`.
pub async fn test_store(backend: Backend) -> Option<TestStore> {
    match backend {
        Backend::Sqlite => {
            let guard = sqlite_url_for_test();
            Some(TestStore {
                url: guard.url().to_owned(),
                _sqlite: Some(guard),
            })
        }
        Backend::Postgres => postgres_url_for_test()
            .await
            .map(|url| TestStore { url, _sqlite: None }),
    }
}

/// Starts the service on 127.0.0.1:0.
pub async fn start_service(config: &Config) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Service::start(config, listener).await.unwrap()
}

/// Everything a webhook could have written: stored events and queue/state counters.
#[derive(Debug, PartialEq)]
pub struct StoreSnapshot {
    pub events: Vec<(String, Option<String>, Vec<u8>)>,
    pub status: String,
}

/// Reads [`StoreSnapshot`] from the store.
pub async fn snapshot(store: &Arc<dyn Store>) -> StoreSnapshot {
    let events = store
        .list_events(&EventFilter::default(), 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.event_name.to_string(),
                e.referral_id.map(|r| r.to_string()),
                e.body,
            )
        })
        .collect();
    let status = store.status_summary(chrono::Utc::now()).await.unwrap();
    StoreSnapshot {
        events,
        status: format!("{:?} {:?}", status.events_by_outcome, status.queue),
    }
}

/// Runs each listed `async fn(Backend)` once per backend, as `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::support::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::support::Backend::Postgres).await })*
        }
    };
}
