//! The callback verifier against real certificate chains served over HTTP: every
//! check, in order, with its status and reason.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use bytes::Bytes;
use chrono::Duration;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use refsync_core::EventName;
use refsync_partner_center::callback::{
    CallbackRejection, CallbackVerifier, FetchFailure, SignatureHeaderStyle, UnverifiedCallback,
};
use support::{
    CertServer, EVENT_BODY, Pki, Style, anchors_file, now, pem_file, signed_callback,
    signed_headers, verifier,
};

async fn reject(v: &CallbackVerifier, cb: UnverifiedCallback) -> CallbackRejection {
    v.verify_callback(cb, now()).await.unwrap_err()
}

fn assert_rejection(r: &CallbackRejection, status: u16, reason: &str) {
    assert_eq!(
        (r.status().as_u16(), r.reason()),
        (status, reason),
        "got {r:?}"
    );
}

#[tokio::test]
async fn accepts_signature_in_authorization_header() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let verified = v
        .verify_callback(
            signed_callback(EVENT_BODY, &url, Style::Authorization),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(verified.header_style(), SignatureHeaderStyle::Authorization);
    assert_eq!(verified.event().event_name, EventName::ReferralUpdated);
    assert_eq!(
        verified.event().referral_id().unwrap().as_str(),
        "c5fbb3b6-be74-4795-9fb5-4324c73fed37"
    );
    assert_eq!(verified.body().as_ref(), EVENT_BODY.as_bytes());
    assert_eq!(verified.signature_headers().certificate_url(), url);
    assert_eq!(verified.signature_headers().algorithm(), "rsa-sha256");
    assert!(
        verified
            .signature_headers()
            .signature()
            .starts_with("Signature ")
    );
}

#[tokio::test]
async fn accepts_signature_in_x_ms_signature_header() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let mut headers = signed_headers(
        &Pki::get().leaf_key.sign(EVENT_BODY.as_bytes()),
        &url,
        Style::MsSignature,
    );
    // With SignatureTokenToMsSignatureHeader the Authorization header is free for
    // other uses (reference §2.5); it must not get in the way.
    headers.insert(AUTHORIZATION, "Bearer something-else".parse().unwrap());
    let verified = v
        .verify_callback(
            UnverifiedCallback::new(&headers, Bytes::from_static(EVENT_BODY.as_bytes())),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(verified.header_style(), SignatureHeaderStyle::MsSignature);
    let (event, body, received, style) = verified.into_parts();
    assert_eq!(event.event_name, EventName::ReferralUpdated);
    assert_eq!(body.as_ref(), EVENT_BODY.as_bytes());
    assert_eq!(received.certificate_url(), url);
    assert_eq!(style, SignatureHeaderStyle::MsSignature);
}

#[tokio::test]
async fn served_file_may_be_der_leaf_with_intermediate_or_leaf_plus_bundle() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    // Concatenated DER leaf + intermediate.
    let url = server.url("cert/good-chain.der");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();

    // DER leaf alone: no path without an intermediate...
    let leaf_only = server.url("cert/good-leaf-only.cer");
    let r = reject(
        &v,
        signed_callback(EVENT_BODY, &leaf_only, Style::Authorization),
    )
    .await;
    assert_rejection(&r, 401, "untrusted_chain");

    // ...but with the configured intermediate bundle there is.
    let bundle = pem_file(&Pki::get().microsoft_ca.pem);
    let mut config = server.config(&anchors);
    config.intermediates = Some(bundle.path().to_owned());
    let v = verifier(&config);
    v.verify_callback(
        signed_callback(EVENT_BODY, &leaf_only, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn intermediate_is_fetched_from_aia_only_under_its_allow_list() {
    let server = CertServer::start(|base| {
        let aia = Pki::get().leaf_with_aia(&format!("{base}/pki/microsoft-ca.der"));
        let outside = Pki::get().leaf_with_aia(&format!("{base}/other/microsoft-ca.der"));
        vec![
            ("cert/aia.cer".to_owned(), support::Served::File(aia.der)),
            (
                "cert/aia-outside.cer".to_owned(),
                support::Served::File(outside.der),
            ),
            (
                "other/microsoft-ca.der".to_owned(),
                support::Served::File(Pki::get().microsoft_ca.der.clone()),
            ),
        ]
    })
    .await;
    let anchors = anchors_file();
    let url = server.url("cert/aia.cer");

    // Without an intermediate allow-list, the AIA URL is never fetched.
    let v = verifier(&server.config(&anchors));
    let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
    assert_rejection(&r, 401, "untrusted_chain");
    assert_eq!(server.hits("pki/microsoft-ca.der"), 0);

    let v = verifier(&server.config_with_aia(&anchors));
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(server.hits("pki/microsoft-ca.der"), 1);

    // An AIA URL outside the intermediate allow-list is not fetched either.
    let outside = server.url("cert/aia-outside.cer");
    let r = reject(
        &v,
        signed_callback(EVENT_BODY, &outside, Style::Authorization),
    )
    .await;
    assert_rejection(&r, 401, "untrusted_chain");
    assert_eq!(server.hits("other/microsoft-ca.der"), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_413_before_anything_else() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let mut config = server.config(&anchors);
    config.max_body_bytes = EVENT_BODY.len() - 1;
    let v = verifier(&config);
    assert_eq!(v.max_body_bytes(), EVENT_BODY.len() - 1);
    // No signature headers at all: the size check comes first.
    let cb = UnverifiedCallback::new(&HeaderMap::new(), Bytes::from_static(EVENT_BODY.as_bytes()));
    let r = reject(&v, cb).await;
    assert_rejection(&r, 413, "body_too_large");
    assert_eq!(server.total_hits(), 0);
}

#[tokio::test]
async fn signature_header_problems_are_401() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let sig = Pki::get().leaf_key.sign(EVENT_BODY.as_bytes());
    let body = || Bytes::from_static(EVENT_BODY.as_bytes());

    let mut h = signed_headers(&sig, &url, Style::Authorization);
    h.remove(AUTHORIZATION);
    assert_rejection(
        &reject(&v, UnverifiedCallback::new(&h, body())).await,
        401,
        "missing_signature",
    );

    for (style, value) in [
        (Style::Authorization, format!("Bearer {sig}")),
        (Style::Authorization, format!("Basic {sig}")),
        (Style::MsSignature, sig.clone()),
    ] {
        let mut h = signed_headers(&sig, &url, style);
        let name = match style {
            Style::Authorization => "authorization",
            Style::MsSignature => "x-ms-signature",
        };
        h.insert(name, value.parse().unwrap());
        assert_rejection(
            &reject(&v, UnverifiedCallback::new(&h, body())).await,
            401,
            "wrong_signature_scheme",
        );
    }

    let mut h = signed_headers(&sig, &url, Style::Authorization);
    h.insert(AUTHORIZATION, "Signature ***".parse().unwrap());
    assert_rejection(
        &reject(&v, UnverifiedCallback::new(&h, body())).await,
        401,
        "malformed_signature",
    );
    assert_eq!(server.total_hits(), 0);
}

#[tokio::test]
async fn certificate_url_missing_is_400_and_outside_allow_list_is_401_unfetched() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let sig = Pki::get().leaf_key.sign(EVENT_BODY.as_bytes());
    let body = || Bytes::from_static(EVENT_BODY.as_bytes());

    let mut h = signed_headers(&sig, "x", Style::Authorization);
    h.remove("x-ms-certificate-url");
    assert_rejection(
        &reject(&v, UnverifiedCallback::new(&h, body())).await,
        400,
        "missing_certificate_url",
    );

    // other/good.pem serves a perfectly good chain: only the allow-list stops it.
    let port = server.addr.port();
    for url in [
        server.url("other/good.pem"),
        server.url("cert/../other/good.pem"),
        server.url("cert/%2e%2e/other/good.pem"),
        server.url("cert%2Fgood.pem"),
        server.url("cert/good.pem?x=1"),
        format!("http://evil.example@127.0.0.1:{port}/cert/good.pem"),
        format!("https://127.0.0.1:{port}/cert/good.pem"),
        format!("http://127.0.0.1:{}/cert/good.pem", port.wrapping_add(1)),
        "https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer"
            .to_owned(),
    ] {
        let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
        assert_rejection(&r, 401, "certificate_url_not_allowed");
    }
    assert_eq!(server.total_hits(), 0);
}

#[tokio::test]
async fn signature_algorithm_missing_is_400_and_other_is_401() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let sig = Pki::get().leaf_key.sign(EVENT_BODY.as_bytes());
    let body = || Bytes::from_static(EVENT_BODY.as_bytes());

    let mut h = signed_headers(&sig, &url, Style::Authorization);
    h.remove("x-ms-signature-algorithm");
    assert_rejection(
        &reject(&v, UnverifiedCallback::new(&h, body())).await,
        400,
        "missing_signature_algorithm",
    );
    for alg in ["rsa-sha1", "rsa-sha512", "hmac-sha256", "none"] {
        let mut h = signed_headers(&sig, &url, Style::Authorization);
        h.insert("x-ms-signature-algorithm", alg.parse().unwrap());
        assert_rejection(
            &reject(&v, UnverifiedCallback::new(&h, body())).await,
            401,
            "unsupported_signature_algorithm",
        );
    }
    assert_eq!(server.total_hits(), 0);

    let mut h = signed_headers(&sig, &url, Style::Authorization);
    h.insert("x-ms-signature-algorithm", "RSA-SHA256".parse().unwrap());
    v.verify_callback(UnverifiedCallback::new(&h, body()), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn unfetchable_certificates_are_401() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let mut config = server.config(&anchors);
    config.fetch_timeout = std::time::Duration::from_millis(300);
    let v = verifier(&config);
    for (path, failure) in [
        ("cert/missing.pem", FetchFailure::Status(404)),
        ("cert/garbage.pem", FetchFailure::NotACertificate),
        ("cert/huge.pem", FetchFailure::TooLarge(64 * 1024)),
        ("cert/huge-streamed.pem", FetchFailure::TooLarge(64 * 1024)),
        ("cert/escape.pem", FetchFailure::RedirectRefused),
        ("cert/escape-absolute.pem", FetchFailure::RedirectRefused),
        ("cert/escape-dots.pem", FetchFailure::RedirectRefused),
        ("cert/slow.pem", FetchFailure::Timeout),
    ] {
        let url = server.url(path);
        let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
        assert_rejection(&r, 401, "certificate_unavailable");
        assert_eq!(
            r,
            CallbackRejection::CertificateUnavailable(failure),
            "{path}"
        );
    }
    // The refused redirects were not followed.
    assert_eq!(server.hits("other/good.pem"), 0);

    // A redirect that stays under the allow-list is followed.
    let url = server.url("cert/moved.pem");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(server.hits("cert/good.pem"), 1);
}

#[tokio::test]
async fn certificate_checks_refuse_each_bad_leaf() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    for (leaf, reason) in [
        ("expired", "certificate_expired"),
        ("not-yet-valid", "certificate_not_yet_valid"),
        ("untrusted-root", "untrusted_chain"),
        ("self-signed", "untrusted_chain"),
        ("client-auth-only", "wrong_key_usage"),
        ("no-digital-signature", "wrong_key_usage"),
        ("other-dns", "wrong_dns_name"),
        ("wrong-org", "wrong_organization"),
        ("similar-org", "wrong_organization"),
        ("no-org", "wrong_organization"),
        ("ecdsa", "unsupported_key"),
    ] {
        let url = server.url(&format!("cert/{leaf}.pem"));
        let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
        assert_eq!(r.status().as_u16(), 401, "{leaf}: {r:?}");
        assert_eq!(r.reason(), reason, "{leaf}: {r:?}");
    }
}

#[tokio::test]
async fn issuer_organization_counts_only_when_the_subject_names_none() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    // Subject without O, issued by the Microsoft CA: accepted.
    let url = server.url("cert/issuer-org-only.pem");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
    // Subject O=Contoso, issued by the same Microsoft CA: refused (the sample's
    // issuer-only check would have accepted it).
    let url = server.url("cert/wrong-org.pem");
    let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
    assert_rejection(&r, 401, "wrong_organization");
}

#[tokio::test]
async fn any_eku_policy_accepts_a_client_auth_leaf() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let mut config = server.config(&anchors);
    config.required_eku = refsync_partner_center::callback::EkuPolicy::Any;
    let v = verifier(&config);
    let url = server.url("cert/client-auth-only.pem");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn configured_dns_name_and_organization_are_used() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let mut config = server.config(&anchors);
    config.dns_name = "evil.example.com".to_owned();
    let v = verifier(&config);
    let url = server.url("cert/other-dns.pem");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();

    let mut config = server.config(&anchors);
    config.organization = "Contoso Ltd".to_owned();
    let v = verifier(&config);
    let url = server.url("cert/wrong-org.pem");
    v.verify_callback(
        signed_callback(EVENT_BODY, &url, Style::Authorization),
        now(),
    )
    .await
    .unwrap();
    let url = server.url("cert/good.pem");
    let r = reject(&v, signed_callback(EVENT_BODY, &url, Style::Authorization)).await;
    assert_rejection(&r, 401, "wrong_organization");
}

#[tokio::test]
async fn signature_must_cover_the_exact_raw_body() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let pki = Pki::get();
    let sig = pki.leaf_key.sign(EVENT_BODY.as_bytes());

    let send = |sig: &str, body: Vec<u8>| {
        UnverifiedCallback::new(
            &signed_headers(sig, &url, Style::Authorization),
            Bytes::from(body),
        )
    };

    // One byte changed (a digit of the referral id: still a valid event).
    let mut changed = EVENT_BODY.as_bytes().to_vec();
    let pos = EVENT_BODY.find("c5fbb3b6").unwrap();
    changed[pos] = b'd';
    assert_rejection(&reject(&v, send(&sig, changed)).await, 401, "bad_signature");

    // The same event re-serialised: equal as JSON, different as bytes.
    let value: serde_json::Value = serde_json::from_str(EVENT_BODY).unwrap();
    let reserialised = serde_json::to_vec(&value).unwrap();
    assert_ne!(reserialised, EVENT_BODY.as_bytes());
    assert_rejection(
        &reject(&v, send(&sig, reserialised)).await,
        401,
        "bad_signature",
    );

    // A valid signature, but of another body.
    let other = EVENT_BODY.replace("referral-updated", "referral-created");
    let other_sig = pki.leaf_key.sign(other.as_bytes());
    assert_rejection(
        &reject(&v, send(&other_sig, EVENT_BODY.as_bytes().to_vec())).await,
        401,
        "bad_signature",
    );

    // The right body, signed by a key that is not the certificate's.
    let foreign = pki.other_key.sign(EVENT_BODY.as_bytes());
    assert_rejection(
        &reject(&v, send(&foreign, EVENT_BODY.as_bytes().to_vec())).await,
        401,
        "bad_signature",
    );

    // A truncated signature.
    let truncated = &sig[..sig.len() - 8];
    assert_rejection(
        &reject(&v, send(truncated, EVENT_BODY.as_bytes().to_vec())).await,
        401,
        "bad_signature",
    );

    // And the untouched original still passes.
    v.verify_callback(send(&sig, EVENT_BODY.as_bytes().to_vec()), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn signed_body_that_is_not_an_event_is_400() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    for body in [
        "not json at all",
        "[1,2,3]",
        r#"{"EventName":"referral-created"}"#,
        r#"{"EventName":"referral-created","ResourceUri":"u","ResourceName":"referral","ResourceChangeUtcDate":"soon"}"#,
    ] {
        let r = reject(&v, signed_callback(body, &url, Style::Authorization)).await;
        assert_rejection(&r, 400, "malformed_event");
        assert!(!r.to_string().contains("soon"), "body leaked: {r}");
    }
}

#[tokio::test]
async fn validity_is_checked_against_each_requests_time_even_when_cached() {
    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let mut config = server.config(&anchors);
    config.certificate_cache_ttl = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let v = verifier(&config);
    let url = server.url("cert/good.pem");
    let cb = || signed_callback(EVENT_BODY, &url, Style::Authorization);

    v.verify_callback(cb(), now()).await.unwrap();
    // Before the leaf's notBefore (2025-01-01), with the cache entry still fresh.
    let early = support::good_not_before() - Duration::days(1);
    let r = v.verify_callback(cb(), early).await.unwrap_err();
    assert_rejection(&r, 401, "certificate_not_yet_valid");
    assert_eq!(server.hits("cert/good.pem"), 1);

    // After the leaf's notAfter (2030-01-01).
    let late = support::good_not_after() + Duration::days(1);
    let r = v.verify_callback(cb(), late).await.unwrap_err();
    assert_rejection(&r, 401, "certificate_expired");

    // Back in the window it verifies again.
    v.verify_callback(cb(), now() + Duration::days(1))
        .await
        .unwrap();
}
