//! The real webhook endpoint, driven over HTTP with callbacks signed by a test PKI:
//! genuine ones are stored and enqueued; every forged or malformed one is refused
//! with the right status and leaves the store exactly as it was. Runs on SQLite
//! and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use refsync::config::Config;
use refsync_core::ids::{ReferralId, SyncKey};
use refsync_partner_center::callback::CertificateUrlPrefix;
use refsync_partner_center::test_pki::{CertServer, Pki, Style, anchors_file, signed_headers};
use reqwest::header::HeaderMap;
use support::{Backend, snapshot, start_service, test_store};

const REFERRAL: &str = "c5fbb3b6-be74-4795-9fb5-4324c73fed37";

fn event(name: &str, uri: &str, changed: &str) -> String {
    // Indented like Partner Center's own samples: re-serialising would change the bytes.
    format!(
        "{{\n  \"EventName\": \"{name}\",\n  \"ResourceUri\": \"{uri}\",\n  \"ResourceName\": \"referral\",\n  \"AuditUri\": null,\n  \"ResourceChangeUtcDate\": \"{changed}\"\n}}"
    )
}

fn referral_event(changed: &str) -> String {
    event(
        "referral-updated",
        &format!("https://api.partnercenter.microsoft.com/engagements/v1/referrals/{REFERRAL}"),
        changed,
    )
}

struct Bed {
    _store: support::TestStore,
    _anchors: tempfile::NamedTempFile,
    certs: CertServer,
    service: refsync::service::Service,
    http: reqwest::Client,
}

impl Bed {
    async fn start(backend: Backend) -> Option<Bed> {
        let store = test_store(backend).await?;
        let certs = CertServer::start(|_| Vec::new()).await;
        let anchors = anchors_file();
        let mut config = Config::default();
        config.store.url = store.url.clone();
        config.webhook.verifier.certificate_url_prefixes =
            vec![CertificateUrlPrefix::parse(&certs.url("cert/")).unwrap()];
        config.webhook.verifier.trust_anchors =
            refsync_partner_center::callback::TrustAnchorSource::PemFile(anchors.path().into());
        config.webhook.verifier.max_body_bytes = 4096;
        let service = start_service(&config).await;
        Some(Bed {
            _store: store,
            _anchors: anchors,
            certs,
            service,
            http: reqwest::Client::new(),
        })
    }

    fn good_cert(&self) -> String {
        self.certs.url("cert/good.pem")
    }

    async fn post(&self, headers: HeaderMap, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .http
            .post(format!(
                "http://{}/webhooks/partner-center",
                self.service.local_addr()
            ))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Headers for `body` signed by the good key, naming `cert`.
    fn signed(&self, body: &str, cert: &str, style: Style) -> HeaderMap {
        signed_headers(&Pki::get().leaf_key.sign(body.as_bytes()), cert, style)
    }
}

async fn genuine_callbacks_in_both_header_styles_are_stored_and_enqueued(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();

    let first = referral_event("2026-05-31T23:59:00.1234567+00:00");
    let (status, body) = bed
        .post(
            bed.signed(&first, &bed.good_cert(), Style::Authorization),
            first.clone(),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"accepted"}"#));

    // The same referral on the Referrals API host, signature in x-ms-signature.
    let second = event(
        "referral-updated",
        &format!("https://api.partner.microsoft.com/v1.0/engagements/referrals/{REFERRAL}"),
        "2026-06-01T00:00:01Z",
    );
    let (status, _) = bed
        .post(
            bed.signed(&second, &bed.good_cert(), Style::MsSignature),
            second.clone(),
        )
        .await;
    assert_eq!(status, 200);

    let snap = snapshot(&store).await;
    assert_eq!(snap.events.len(), 2);
    // Stored byte for byte as signed.
    assert!(snap.events.iter().any(|(_, _, b)| b == first.as_bytes()));
    assert!(
        snap.events
            .iter()
            .all(|(_, r, _)| r.as_deref() == Some(REFERRAL))
    );
    // Both coalesce on one key for the referral.
    let key = SyncKey::Referral(ReferralId::parse(REFERRAL).unwrap());
    let entry = store
        .queue_entry(&key)
        .await
        .unwrap()
        .expect("the referral is queued");
    assert_eq!(entry.key, key);
    let status = store.status_summary(chrono::Utc::now()).await.unwrap();
    assert_eq!(status.queue.due + status.queue.scheduled, 1);
}

async fn a_redelivery_is_acknowledged_and_stores_nothing_new(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    let body = referral_event("2026-05-31T23:59:00Z");
    let (status, _) = bed
        .post(
            bed.signed(&body, &bed.good_cert(), Style::Authorization),
            body.clone(),
        )
        .await;
    assert_eq!(status, 200);
    let before = snapshot(&store).await;
    let (status, text) = bed
        .post(
            bed.signed(&body, &bed.good_cert(), Style::MsSignature),
            body.clone(),
        )
        .await;
    assert_eq!((status, text.as_str()), (200, r#"{"status":"duplicate"}"#));
    assert_eq!(snapshot(&store).await, before);
}

async fn non_referral_events_are_stored_but_enqueue_nothing(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    let body = "{\"EventName\":\"test-created\",\"ResourceUri\":\"https://api.partnercenter.microsoft.com/webhooks/v1/registration/validationEvents/abc\",\"ResourceName\":\"test\",\"AuditUri\":null,\"ResourceChangeUtcDate\":\"2026-06-01T00:00:00Z\"}";
    let (status, text) = bed
        .post(
            bed.signed(body, &bed.good_cert(), Style::Authorization),
            body,
        )
        .await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"status":"acknowledged"}"#)
    );
    let snap = snapshot(&store).await;
    assert_eq!(snap.events.len(), 1);
    let status = store.status_summary(chrono::Utc::now()).await.unwrap();
    assert_eq!(status.queue, Default::default());
}

async fn forged_and_malformed_callbacks_are_refused_and_store_nothing(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    let before = snapshot(&store).await;
    let body = referral_event("2026-05-31T23:59:00Z");
    let good = bed.good_cert();
    let port = bed.certs.addr.port();
    let sig = Pki::get().leaf_key.sign(body.as_bytes());

    let mut cases: Vec<(&str, HeaderMap, Vec<u8>, u16, &str)> = Vec::new();
    let mut add = |name, headers, body: &[u8], status, reason| {
        cases.push((name, headers, body.to_vec(), status, reason))
    };

    let mut h = bed.signed(&body, &good, Style::Authorization);
    h.remove("authorization");
    add(
        "no signature header",
        h,
        body.as_bytes(),
        401,
        "missing_signature",
    );

    let mut h = bed.signed(&body, &good, Style::Authorization);
    h.insert("authorization", format!("Bearer {sig}").parse().unwrap());
    add(
        "wrong scheme",
        h,
        body.as_bytes(),
        401,
        "wrong_signature_scheme",
    );

    let mut h = bed.signed(&body, &good, Style::Authorization);
    h.remove("x-ms-certificate-url");
    add(
        "no certificate url",
        h,
        body.as_bytes(),
        400,
        "missing_certificate_url",
    );

    for (name, url) in [
        (
            "certificate url on another host",
            "https://evil.example/cert/good.pem".to_owned(),
        ),
        (
            "host suffix trick",
            format!("http://127.0.0.1.evil.example:{port}/cert/good.pem"),
        ),
        (
            "userinfo trick",
            format!("http://evil@127.0.0.1:{port}/cert/good.pem"),
        ),
        (
            "dot-dot segment",
            format!("http://127.0.0.1:{port}/cert/../other/good.pem"),
        ),
        (
            "percent-encoded dots",
            format!("http://127.0.0.1:{port}/cert/%2e%2e/other/good.pem"),
        ),
        (
            "encoded slash",
            format!("http://127.0.0.1:{port}/cert%2Fgood.pem"),
        ),
        (
            "different port",
            format!("http://127.0.0.1:{}/cert/good.pem", port.wrapping_add(1)),
        ),
        (
            "other path",
            format!("http://127.0.0.1:{port}/other/good.pem"),
        ),
    ] {
        add(
            name,
            bed.signed(&body, &url, Style::Authorization),
            body.as_bytes(),
            401,
            "certificate_url_not_allowed",
        );
    }

    let mut h = bed.signed(&body, &good, Style::Authorization);
    h.remove("x-ms-signature-algorithm");
    add(
        "no algorithm",
        h,
        body.as_bytes(),
        400,
        "missing_signature_algorithm",
    );

    let mut h = bed.signed(&body, &good, Style::Authorization);
    h.insert("x-ms-signature-algorithm", "rsa-sha1".parse().unwrap());
    add(
        "weaker algorithm",
        h,
        body.as_bytes(),
        401,
        "unsupported_signature_algorithm",
    );

    add(
        "certificate not fetchable",
        bed.signed(
            &body,
            &bed.certs.url("cert/missing.pem"),
            Style::Authorization,
        ),
        body.as_bytes(),
        401,
        "certificate_unavailable",
    );
    for (leaf, reason) in [
        ("untrusted-root", "untrusted_chain"),
        ("self-signed", "untrusted_chain"),
        ("expired", "certificate_expired"),
        ("not-yet-valid", "certificate_not_yet_valid"),
        ("wrong-org", "wrong_organization"),
        ("other-dns", "wrong_dns_name"),
    ] {
        add(
            leaf,
            bed.signed(
                &body,
                &bed.certs.url(&format!("cert/{leaf}.pem")),
                Style::Authorization,
            ),
            body.as_bytes(),
            401,
            reason,
        );
    }

    let mut tampered = body.clone().into_bytes();
    let at = tampered.iter().position(|b| *b == b'5').unwrap();
    tampered[at] = b'6';
    add(
        "body changed after signing",
        bed.signed(&body, &good, Style::Authorization),
        &tampered,
        401,
        "bad_signature",
    );
    let reserialised =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    add(
        "body re-serialised",
        bed.signed(&body, &good, Style::MsSignature),
        &reserialised,
        401,
        "bad_signature",
    );
    let other_key = Pki::get().other_key.sign(body.as_bytes());
    add(
        "signed by another key",
        signed_headers(&other_key, &good, Style::Authorization),
        body.as_bytes(),
        401,
        "bad_signature",
    );

    let oversized = format!("{body}{}", " ".repeat(5000));
    add(
        "body over the limit",
        bed.signed(&oversized, &good, Style::Authorization),
        oversized.as_bytes(),
        413,
        "body_too_large",
    );

    let not_json = "this is signed but it is not an event";
    add(
        "signed garbage",
        bed.signed(not_json, &good, Style::Authorization),
        not_json.as_bytes(),
        400,
        "malformed_event",
    );
    let no_referral = event(
        "referral-created",
        "https://api.partnercenter.microsoft.com/engagements/v1/referrals/",
        "2026-06-01T00:00:00Z",
    );
    add(
        "referral event naming no referral",
        bed.signed(&no_referral, &good, Style::Authorization),
        no_referral.as_bytes(),
        400,
        "bad_resource_uri",
    );

    for (name, headers, payload, want_status, want_reason) in cases {
        let (status, text) = bed.post(headers, payload).await;
        assert_eq!(status, want_status, "{name}: {text}");
        assert_eq!(
            text,
            format!(r#"{{"error":"{want_reason}"}}"#),
            "{name}: wrong reason"
        );
        assert_eq!(snapshot(&store).await, before, "{name}: the store changed");
    }
}

backend_tests!(
    genuine_callbacks_in_both_header_styles_are_stored_and_enqueued,
    a_redelivery_is_acknowledged_and_stores_nothing_new,
    non_referral_events_are_stored_but_enqueue_nothing,
    forged_and_malformed_callbacks_are_refused_and_store_nothing,
);
