//! The certificate cache: hits do not fetch, concurrent first requests fetch once,
//! entries expire after their TTL, failures are remembered briefly.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use chrono::Duration;
use refsync_partner_center::callback::{CallbackRejection, FetchFailure};
use support::{CertServer, EVENT_BODY, Style, anchors_file, now, signed_callback, verifier};

#[tokio::test]
async fn cached_certificate_is_not_fetched_again() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    for minutes in [0, 1, 30, 59] {
        v.verify_callback(
            signed_callback(EVENT_BODY, &url, Style::Authorization),
            now() + Duration::minutes(minutes),
        )
        .await
        .unwrap();
    }
    assert_eq!(server.hits("cert/good.pem"), 1);

    // Another URL is another cache entry; a clone of the verifier shares the cache.
    let other = server.url("cert/good-chain.der");
    let clone = v.clone();
    clone
        .verify_callback(
            signed_callback(EVENT_BODY, &other, Style::MsSignature),
            now(),
        )
        .await
        .unwrap();
    v.verify_callback(
        signed_callback(EVENT_BODY, &other, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(server.hits("cert/good-chain.der"), 1);
    assert_eq!(server.hits("cert/good.pem"), 1);
}

#[tokio::test]
async fn certificate_is_fetched_again_after_the_ttl() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors)); // default TTL: 1 h
    let url = server.url("cert/good.pem");
    let at = |minutes| now() + Duration::minutes(minutes);
    let cb = || signed_callback(EVENT_BODY, &url, Style::Authorization);

    v.verify_callback(cb(), at(0)).await.unwrap();
    v.verify_callback(cb(), at(59)).await.unwrap();
    assert_eq!(server.hits("cert/good.pem"), 1);
    v.verify_callback(cb(), at(61)).await.unwrap();
    assert_eq!(server.hits("cert/good.pem"), 2);
    v.verify_callback(cb(), at(90)).await.unwrap();
    assert_eq!(server.hits("cert/good.pem"), 2);
}

#[tokio::test]
async fn failures_are_remembered_only_briefly() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors)); // default negative TTL: 5 s
    let at = |seconds| now() + Duration::seconds(seconds);

    for (path, expected) in [
        (
            "cert/missing.pem",
            CallbackRejection::CertificateUnavailable(FetchFailure::Status(404)),
        ),
        // A certificate that fails verification is remembered the same way.
        ("cert/wrong-org.pem", CallbackRejection::WrongOrganization),
    ] {
        let url = server.url(path);
        let cb = || signed_callback(EVENT_BODY, &url, Style::Authorization);
        for seconds in [0, 1, 4] {
            let r = v.verify_callback(cb(), at(seconds)).await.unwrap_err();
            assert_eq!(r, expected);
        }
        assert_eq!(server.hits(path), 1, "{path}");
        let r = v.verify_callback(cb(), at(6)).await.unwrap_err();
        assert_eq!(r, expected);
        assert_eq!(server.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn many_forged_urls_each_cause_at_most_one_fetch() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    for round in 0..3 {
        for i in 0..20 {
            let url = server.url(&format!("cert/forged-{i}.cer"));
            let r = v
                .verify_callback(
                    signed_callback(EVENT_BODY, &url, Style::Authorization),
                    now() + Duration::seconds(round),
                )
                .await
                .unwrap_err();
            assert_eq!(r.reason(), "certificate_unavailable");
        }
    }
    assert_eq!(server.total_hits(), 20);
}

/// A current-thread runtime runs tasks in order, so every task below has reached
/// the cache (and found it empty) before the server answers the first fetch.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_first_requests_fetch_once() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/gated.pem");

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let v = v.clone();
        let style = if i % 2 == 0 {
            Style::Authorization
        } else {
            Style::MsSignature
        };
        let cb = signed_callback(EVENT_BODY, &url, style);
        tasks.spawn(async move { v.verify_callback(cb, now()).await });
    }
    server.first_gated_hit().await;
    // Give any task that (wrongly) started its own fetch every chance to reach
    // the server before the first response is released.
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    assert_eq!(server.hits("cert/gated.pem"), 1);
    server.release();

    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 32);
    assert_eq!(server.hits("cert/gated.pem"), 1);
}
