#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Serving, addressing and shutting down an emulator.

use axum::Router;
use axum::routing::get;
use refsync_emulators::server::{bind_and_serve, serve};

fn app() -> Router {
    Router::new().route("/ping", get(|| async { "pong" }))
}

#[tokio::test]
async fn serves_on_an_ephemeral_port_and_shuts_down() {
    let server = bind_and_serve(app(), "127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(
        server.base_url().as_str(),
        format!("http://127.0.0.1:{}/", addr.port())
    );
    let url = server.url("ping");
    assert_eq!(url, server.url("/ping"));
    assert_eq!(
        reqwest::get(&url).await.unwrap().text().await.unwrap(),
        "pong"
    );

    server.shutdown().await.unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(
        client.get(&url).send().await.is_err(),
        "still serving after shutdown"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(app(), listener).unwrap();
    let url = server.url("/ping");
    assert!(reqwest::get(&url).await.unwrap().status().is_success());
    drop(server);
    // The accept loop ends once the stop signal is seen; poll a bounded number of times.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut refused = false;
    for _ in 0..1000 {
        if client.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "still serving after the handle was dropped");
}

#[tokio::test]
async fn binding_a_bad_address_is_an_error() {
    let err = bind_and_serve(app(), "not-an-address").await.unwrap_err();
    assert!(err.to_string().contains("not-an-address"));
}
