//! `refsync serve`: open the store, build the verifier, serve HTTP, and — when a
//! `[crm]` is configured — run the sync engine's workers, reconciler and CRM
//! poller beside it; stop everything cleanly.
//! [`Service::start`] is also how tests, the demo and the benchmarks run refsync
//! in-process on an ephemeral port.

use crate::config::Config;
use crate::engine::{
    BuiltEngine, build_engine, poller_settings, reconciler_settings, worker_settings,
};
use crate::intake::Intake;
use crate::server::{AppState, metrics_handle, router};
use anyhow::Context;
use refsync_engine::{SyncEngine, run_poller, run_reconciler, run_workers};
use refsync_partner_center::callback::CallbackVerifier;
use refsync_store::{Store, open_store};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running refsync service.
pub struct Service {
    local_addr: SocketAddr,
    store: Arc<dyn Store>,
    engine: Option<Arc<SyncEngine>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Service {
    /// Opens the store (running migrations), then serves on `listener` in the background.
    pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Self> {
        let store = open_store(&config.store.url).await.with_context(|| {
            format!(
                "opening the store at {}",
                refsync_store::redact_url(&config.store.url)
            )
        })?;
        Self::start_with_store(config, listener, store).await
    }

    /// Serves on `listener` with an already opened store.
    pub async fn start_with_store(
        config: &Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        let _ = metrics_handle();
        let verifier = CallbackVerifier::new(&config.webhook.verifier)
            .context("building the webhook verifier from [webhook]")?;
        let local_addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let engine = build_engine(config, Arc::clone(&store))?;
        let referrals_tokens = engine.as_ref().map(|b| Arc::clone(&b.referrals_tokens));
        // Intake wakes the engine's workers directly: a webhook is worked at once,
        // not at the workers' next poll.
        let work_arrived = engine
            .as_ref()
            .map(|b| b.engine.wakeup().clone())
            .unwrap_or_default();
        let intake = Intake::new(verifier, Arc::clone(&store), work_arrived);
        let engine = match engine {
            Some(BuiltEngine { engine, .. }) => {
                start_engine_loops(config, &engine, &shutdown, &tasks);
                Some(engine)
            }
            None => {
                tracing::warn!(
                    "no [crm] kind configured: webhooks are verified, stored and queued, but nothing is synced"
                );
                None
            }
        };
        let app = router(
            AppState {
                intake,
                store: Arc::clone(&store),
                referrals_tokens,
            },
            &config.webhook.path,
        );
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%local_addr, webhook = %config.webhook.path, "refsync serving");
        Ok(Self {
            local_addr,
            store,
            engine,
            shutdown,
            tasks,
        })
    }

    /// The sync engine, when a `[crm]` is configured.
    pub fn engine(&self) -> Option<&Arc<SyncEngine>> {
        self.engine.as_ref()
    }

    /// The address the HTTP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The store the service writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stops accepting requests, lets in-flight ones finish, and waits for every task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.store.close().await;
    }
}

/// Workers, reconciler and CRM poller, all stopping on `shutdown`.
fn start_engine_loops(
    config: &Config,
    engine: &Arc<SyncEngine>,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) {
    tasks.spawn(run_workers(
        Arc::clone(engine),
        worker_settings(config),
        shutdown.clone(),
    ));
    tasks.spawn(run_reconciler(
        Arc::clone(engine),
        reconciler_settings(config),
        shutdown.clone(),
    ));
    tasks.spawn(run_poller(
        Arc::clone(engine),
        poller_settings(config),
        shutdown.clone(),
    ));
}

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run_service(config: &Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let service = Service::start(config, listener).await?;
    wait_for_shutdown_signal().await;
    tracing::info!("shutting down");
    service.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM (what service managers send) or Ctrl-C.
pub async fn wait_for_shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
