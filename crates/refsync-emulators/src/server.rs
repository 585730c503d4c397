//! Running an emulator: bind an axum [`Router`] to a listener, log each request,
//! and stop gracefully on [`EmulatorHandle::shutdown`] or when the handle is dropped.
//!
//! Every emulator (standalone under `refsync emulate`, or in-process on an
//! ephemeral port in tests and the demo) is started through [`serve`], so they all
//! log, report their address and shut down the same way.

use axum::Router;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use url::Url;

/// Why an emulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound or read back.
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The bound address did not make a URL (cannot happen for an IP and a port).
    #[error("bound address does not form a URL: {0}")]
    Url(url::ParseError),
}

/// A running emulator. Dropping it asks the server to stop (without waiting);
/// [`EmulatorHandle::shutdown`] stops it and waits for in-flight requests to finish.
#[derive(Debug)]
pub struct EmulatorHandle {
    local_addr: SocketAddr,
    base_url: Url,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Serves `router` on `listener` until the returned handle is shut down or dropped.
///
/// Requests are logged through `tracing` (one span per request, one event per
/// response at DEBUG). Must be called inside a Tokio runtime.
pub fn serve(router: Router, listener: TcpListener) -> Result<EmulatorHandle, ServeError> {
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: "listener".to_owned(),
        source,
    })?;
    let base_url = base_url_for(local_addr).map_err(ServeError::Url)?;
    let router = router.layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
            .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // Either an explicit shutdown or the handle being dropped ends the wait.
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%base_url, "emulator listening");
    Ok(EmulatorHandle {
        local_addr,
        base_url,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Binds `addr` (e.g. `127.0.0.1:0` for an ephemeral port) and serves `router` on it.
pub async fn bind_and_serve(router: Router, addr: &str) -> Result<EmulatorHandle, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    serve(router, listener)
}

impl EmulatorHandle {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://host:port/` for reaching the server; a wildcard bind is reported as loopback.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `base_url` joined with `path` (which may start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.base_url.as_str().trim_end_matches('/'),
            if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            }
        )
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server task.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn base_url_for(addr: SocketAddr) -> Result<Url, url::ParseError> {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let text = match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}/", addr.port()),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}/", addr.port()),
    };
    Url::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_reported_as_loopback() {
        let url = base_url_for("0.0.0.0:7070".parse().unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:7070/");
        let url = base_url_for("[::1]:8080".parse().unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://[::1]:8080/");
    }
}
