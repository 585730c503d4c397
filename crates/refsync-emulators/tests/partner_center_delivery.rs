#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Signed webhook delivery to a receiver in the test (partner-center.md §2.3-§2.5):
//! the payload and headers, both signature header styles, the certificate chain
//! and signature checked with the `openssl` command line (not the emulator's
//! code), which events a change raises, retries into the offline queue, and the
//! duplicate/delay/hold/drop delivery faults.

mod partner_center_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use partner_center_support::*;
use refsync_emulators::partner_center::{
    CertificateFileFormat, DeliveryConfig, DeliveryFaultKind, DeliveryFaultRule, DeliveryState,
    MicrosoftChange, MicrosoftUpdate, PartnerCenterConfig,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const ALL_REFERRAL_EVENTS: [&str; 4] = [
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
];

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("pc-emu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl`; returns success and stdout+stderr.
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn der_to_pem(scratch: &Scratch, name: &str, der: &[u8]) -> String {
    let der_path = scratch.write(&format!("{name}.der"), der);
    let pem_path = scratch.path(&format!("{name}.pem"));
    let (ok, text) = openssl(&[
        "x509", "-inform", "DER", "-in", &der_path, "-out", &pem_path,
    ]);
    assert!(ok, "{text}");
    pem_path
}

/// Checks a received webhook the way a careful receiver would, with openssl only:
/// fetch the leaf from `x-ms-certificate-url`, the intermediate from the leaf's AIA
/// URL, verify the chain to the emulator's root, the leaf's names and usages, and
/// the RSA-SHA256 signature over the exact body bytes.
async fn verify_with_openssl(pc: &Pc, received: &Received, signature_header: &str) {
    let scratch = Scratch::new();
    let root = scratch.write("root.pem", pc.emulator().root_ca_pem().as_bytes());

    let cert_url = received.headers["x-ms-certificate-url"].to_str().unwrap();
    assert_eq!(cert_url, pc.emulator().certificate_url());
    assert!(cert_url.ends_with("/cert/pcnotifications-dispatch.microsoft.com.cer"));
    let leaf_der = pc
        .http
        .get(cert_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let leaf = der_to_pem(&scratch, "leaf", &leaf_der);

    let (ok, aia) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-ext",
        "authorityInfoAccess",
    ]);
    assert!(ok, "{aia}");
    let issuer_url = aia
        .split("CA Issuers - URI:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no caIssuers URL in {aia}"))
        .to_owned();
    let intermediate_der = pc
        .http
        .get(&issuer_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let intermediate = der_to_pem(&scratch, "intermediate", &intermediate_der);

    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &intermediate,
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "pcnotifications-dispatch.microsoft.com",
        &leaf,
    ]);
    assert!(ok && text.contains(": OK"), "{text}");

    let (_, subject) = openssl(&[
        "x509", "-in", &leaf, "-noout", "-subject", "-nameopt", "RFC2253",
    ]);
    assert!(subject.contains("O=Microsoft Corporation"), "{subject}");
    assert!(
        subject.contains("CN=pcnotifications-dispatch.microsoft.com"),
        "{subject}"
    );
    let (_, ext) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-ext",
        "keyUsage,extendedKeyUsage,subjectAltName",
    ]);
    assert!(ext.contains("Digital Signature"), "{ext}");
    assert!(ext.contains("TLS Web Server Authentication"), "{ext}");
    assert!(
        ext.contains("DNS:pcnotifications-dispatch.microsoft.com"),
        "{ext}"
    );

    let (ok, public) = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey"]);
    assert!(ok, "{public}");
    let public = scratch.write("public.pem", public.as_bytes());
    let header = received.headers[signature_header].to_str().unwrap();
    let encoded = header.strip_prefix("Signature ").expect("scheme Signature");
    let signature = scratch.write("sig.bin", &STANDARD.decode(encoded).unwrap());
    let body = scratch.write("body.bin", &received.body);
    let (ok, text) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &public,
        "-signature",
        &signature,
        &body,
    ]);
    assert!(ok && text.contains("Verified OK"), "{text}");

    let mut tampered = received.body.to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x20;
    let tampered = scratch.write("tampered.bin", &tampered);
    let (ok, text) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &public,
        "-signature",
        &signature,
        &tampered,
    ]);
    assert!(!ok && text.contains("Verification failure"), "{text}");
}

#[tokio::test]
async fn a_referral_event_has_the_documented_shape_and_a_signature_openssl_accepts() {
    let pc = start().await;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &ALL_REFERRAL_EVENTS, false)
        .await;

    let sent = pc
        .emulator()
        .send_referral(referral_body("Signed"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    let received = receiver.next().await;

    assert_eq!(received.headers["content-type"], "application/json");
    assert_eq!(received.headers["x-ms-signature-algorithm"], "rsa-sha256");
    assert!(received.headers.get("x-ms-signature").is_none());
    let event = received.json();
    let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "EventName",
            "ResourceUri",
            "ResourceName",
            "AuditUri",
            "ResourceChangeUtcDate"
        ]
    );
    assert_eq!(event["EventName"], "referral-created");
    assert_eq!(
        event["ResourceUri"],
        format!("https://api.partnercenter.microsoft.com/engagements/v1/referrals/{id}")
    );
    assert_eq!(event["ResourceName"], "referral");
    assert_eq!(event["AuditUri"], Value::Null);
    let changed = event["ResourceChangeUtcDate"].as_str().unwrap();
    assert!(
        changed.ends_with("+00:00") && changed.len() == 33,
        "{changed}"
    );
    let parsed = refsync_core::WebhookEvent::from_slice(&received.body).unwrap();
    assert_eq!(parsed.referral_id().unwrap().as_str(), id);

    verify_with_openssl(&pc, &received, "authorization").await;
}

#[tokio::test]
async fn the_ms_signature_header_style_and_a_pem_bundle_certificate_file() {
    let pc = start_with(PartnerCenterConfig {
        certificate: refsync_emulators::partner_center::CertificateConfig {
            file_format: CertificateFileFormat::PemBundle,
            ..Default::default()
        },
        ..PartnerCenterConfig::for_tests()
    })
    .await;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &["referral-created"], true)
        .await;
    pc.emulator()
        .send_referral(referral_body("Header style"))
        .unwrap();
    let received = receiver.next().await;
    assert!(received.headers.get("authorization").is_none());
    let signature = received.headers["x-ms-signature"].to_str().unwrap();
    assert!(signature.starts_with("Signature "));

    // The bundle holds leaf then intermediate; openssl verifies the pair and the body.
    let scratch = Scratch::new();
    let bundle = pc
        .http
        .get(pc.emulator().certificate_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    let split =
        bundle.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let leaf = scratch.write("leaf.pem", bundle[..split].trim().as_bytes());
    let intermediate = scratch.write("intermediate.pem", bundle[split..].trim().as_bytes());
    let root = scratch.write("root.pem", pc.emulator().root_ca_pem().as_bytes());
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &intermediate,
        &leaf,
    ]);
    assert!(ok, "{text}");
    let (_, public) = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey"]);
    let public = scratch.write("public.pem", public.as_bytes());
    let sig = STANDARD
        .decode(signature.strip_prefix("Signature ").unwrap())
        .unwrap();
    let sig = scratch.write("sig.bin", &sig);
    let body = scratch.write("body.bin", &received.body);
    let (ok, text) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &public,
        "-signature",
        &sig,
        &body,
    ]);
    assert!(ok, "{text}");
}

#[tokio::test]
async fn each_change_raises_the_documented_events_for_subscribed_names() {
    let pc = start().await;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &ALL_REFERRAL_EVENTS, false)
        .await;
    let em = pc.emulator();

    let pair = em.open_cosell(referral_body("Co-sell")).unwrap();
    let partner = pair.partner["id"].as_str().unwrap().to_owned();
    let microsoft = pair.microsoft["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = receiver.next().await;
        seen.push((r.event_name(), r.referral_id()));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("referral-created".to_owned(), partner.clone()),
            ("related-referral-created".to_owned(), microsoft.clone()),
        ]
    );

    // Microsoft records its CRM id on its half; the partner hears of a related update.
    em.microsoft_change(
        &microsoft,
        MicrosoftChange::Update(MicrosoftUpdate {
            msx_id: Some("7-3CW8Q9KZ1".into()),
            ..MicrosoftUpdate::default()
        }),
    )
    .unwrap();
    let r = receiver.next().await;
    assert_eq!(
        (r.event_name(), r.referral_id()),
        ("related-referral-updated".to_owned(), microsoft.clone())
    );
    assert_eq!(
        em.referral(&microsoft).unwrap()["trackingInfo"]["microsoftMsxId"],
        "7-3CW8Q9KZ1"
    );

    // The partner's own changes (through the API or the UI) are referral-updated.
    let accept = json!([{"op": "replace", "path": "/status", "value": "Active"},
                        {"op": "replace", "path": "/substatus", "value": "Accepted"}]);
    assert_eq!(pc.patch(&partner, &accept, &[]).await.status, 204);
    let r = receiver.next().await;
    assert_eq!(
        (r.event_name(), r.referral_id()),
        ("referral-updated".to_owned(), partner.clone())
    );
    em.microsoft_change(&partner, MicrosoftChange::Win).unwrap();
    assert_eq!(receiver.next().await.event_name(), "referral-updated");
    // A write that changes nothing raises nothing.
    let noop = json!([{"op": "replace", "path": "/status", "value": "Closed"},
                      {"op": "replace", "path": "/substatus", "value": "Won"}]);
    assert_eq!(pc.patch(&partner, &noop, &[]).await.status, 204);

    // Only subscribed names are sent.
    em.remove_registration();
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    let lone = em.send_referral(referral_body("Lone")).unwrap();
    em.microsoft_change(lone["id"].as_str().unwrap(), MicrosoftChange::Expire)
        .unwrap();
    assert_eq!(receiver.next().await.event_name(), "referral-created");
    em.wait_for_deliveries().await;
    assert!(receiver.drain().is_empty());
    let names: Vec<String> = em
        .delivery_log()
        .deliveries
        .iter()
        .map(|d| d.event_name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "referral-created",
            "related-referral-created",
            "related-referral-updated",
            "referral-updated",
            "referral-updated",
            "referral-created"
        ]
    );
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_parked_in_the_offline_queue() {
    let pc = start().await;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    let em = pc.emulator();

    // Two failures, then success: three attempts.
    receiver.answer(&[503, 500]);
    em.send_referral(referral_body("Flaky")).unwrap();
    em.wait_for_deliveries().await;
    let log = em.delivery_log();
    let statuses: Vec<Option<u16>> = log.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(503), Some(500), Some(200)]);
    assert_eq!(log.deliveries[0].state, DeliveryState::Delivered);
    assert_eq!(log.deliveries[0].attempts, 3);
    let bodies: Vec<_> = receiver.drain().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "retries resend the same bytes"
    );

    // Ten failures: parked, no further attempts.
    receiver.answer(&[500; 10]);
    em.send_referral(referral_body("Down")).unwrap();
    em.wait_for_deliveries().await;
    let offline = em.offline_queue();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].attempts, 10);
    assert_eq!(offline[0].last_error, "HTTP 500");
    assert_eq!(receiver.drain().len(), 10);
    let id = offline[0].delivery_id;
    assert_eq!(
        em.delivery_log()
            .attempts
            .iter()
            .filter(|a| a.delivery_id == id)
            .count(),
        10
    );

    // Redelivering the offline queue sends it again.
    assert_eq!(em.redeliver_offline_queue(), 1);
    em.wait_for_deliveries().await;
    assert!(em.offline_queue().is_empty());
    assert_eq!(receiver.drain().len(), 1);
    let record = em
        .delivery_log()
        .deliveries
        .into_iter()
        .find(|d| d.id == id)
        .unwrap();
    assert_eq!(record.state, DeliveryState::Delivered);
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_counts_as_a_failure() {
    let pc = start_with(PartnerCenterConfig {
        delivery: DeliveryConfig {
            max_attempts: 2,
            timeout: Duration::from_millis(200),
            ..DeliveryConfig::fast()
        },
        ..PartnerCenterConfig::for_tests()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.stall(Some(Duration::from_secs(2)));
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    pc.emulator().send_referral(referral_body("Slow")).unwrap();
    pc.emulator().wait_for_deliveries().await;
    let offline = pc.emulator().offline_queue();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].last_error, "timeout");
    let attempts = pc.emulator().delivery_log().attempts;
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a.status.is_none() && a.error.as_deref() == Some("timeout"))
    );
}

#[tokio::test]
async fn delivery_faults_duplicate_delay_hold_and_drop() {
    let pc = start().await;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    let em = pc.emulator();
    let send = |name: &str| {
        em.send_referral(referral_body(name)).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Duplicate: the same signed bytes twice.
    em.install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Duplicate, 1))
        .unwrap();
    let dup = send("Duplicated");
    let (a, b) = (receiver.next().await, receiver.next().await);
    assert_eq!(
        (a.referral_id(), b.referral_id()),
        (dup.clone(), dup.clone())
    );
    assert_eq!(a.body, b.body);
    assert_eq!(a.headers["authorization"], b.headers["authorization"]);

    // Hold: deterministic reordering.
    em.install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Hold, 1))
        .unwrap();
    let held = send("Held");
    let overtaking = send("Overtaking");
    assert_eq!(receiver.next().await.referral_id(), overtaking);
    em.wait_for_deliveries().await;
    assert!(receiver.drain().is_empty());
    assert_eq!(em.release_held_deliveries(), 1);
    assert_eq!(receiver.next().await.referral_id(), held);

    // Delay: a later event arrives first.
    em.install_delivery_fault(DeliveryFaultRule {
        delay_ms: Some(1000),
        ..DeliveryFaultRule::next(DeliveryFaultKind::Delay, 1)
    })
    .unwrap();
    let late = send("Late");
    let early = send("Early");
    assert_eq!(receiver.next().await.referral_id(), early);
    assert_eq!(receiver.next().await.referral_id(), late);

    // Drop: never sent, parked in the offline queue, redeliverable.
    em.install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Drop, 1))
        .unwrap();
    let lost = send("Lost");
    let next = send("Next");
    assert_eq!(receiver.next().await.referral_id(), next);
    em.wait_for_deliveries().await;
    assert!(receiver.drain().is_empty());
    let offline = em.offline_queue();
    assert_eq!(offline.len(), 1);
    assert_eq!(
        (offline[0].attempts, offline[0].last_error.as_str()),
        (0, "dropped by fault")
    );
    em.redeliver_offline_queue();
    assert_eq!(receiver.next().await.referral_id(), lost);

    let faults: Vec<String> = em
        .delivery_log()
        .deliveries
        .iter()
        .filter_map(|d| d.fault.clone())
        .collect();
    assert_eq!(faults, ["duplicate", "hold", "delay", "drop"]);
    assert!(em.delivery_faults().iter().all(|f| f.remaining == Some(0)));
}
