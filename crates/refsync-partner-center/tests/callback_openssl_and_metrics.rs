//! Beyond the checks themselves: the signature wire format proved with OpenSSL,
//! the metrics each outcome records, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use bytes::Bytes;
use http::HeaderMap;
use refsync_partner_center::callback::{
    CallbackVerifier, UnverifiedCallback, VerifierConfig, VerifierConfigError,
};
use support::{
    CertServer, EVENT_BODY, Pki, Style, anchors_file, now, pem_file, signed_callback,
    signed_headers, verifier,
};

#[test]
fn config_errors_are_reported() {
    let anchors = anchors_file();
    let mut config = VerifierConfig::for_local("http://127.0.0.1:9/cert/", anchors.path()).unwrap();
    config.dns_name = "not a name".to_owned();
    assert!(matches!(
        CallbackVerifier::new(&config),
        Err(VerifierConfigError::BadDnsName(_))
    ));

    let config =
        VerifierConfig::for_local("http://127.0.0.1:9/cert/", "/nonexistent/roots.pem").unwrap();
    assert!(matches!(
        CallbackVerifier::new(&config),
        Err(VerifierConfigError::Read { .. })
    ));

    let not_pem = pem_file("hello");
    let config = VerifierConfig::for_local("http://127.0.0.1:9/cert/", not_pem.path()).unwrap();
    assert!(matches!(
        CallbackVerifier::new(&config),
        Err(VerifierConfigError::BadPem { .. })
    ));

    let mut config = VerifierConfig::for_local("http://127.0.0.1:9/cert/", anchors.path()).unwrap();
    config.certificate_url_prefixes.clear();
    assert!(matches!(
        CallbackVerifier::new(&config),
        Err(VerifierConfigError::NoCertificatePrefixes)
    ));

    assert!(VerifierConfig::for_local("http://example.com/cert/", anchors.path()).is_err());

    // The documented defaults build (web PKI roots compiled in).
    CallbackVerifier::new(&VerifierConfig::default()).unwrap();
}

/// Runs `openssl` with `args`; the machine image ships it (Debian's openssl).
fn openssl(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be on PATH for the wire-format test")
}

/// Proves the wire format with code that shares nothing with the verifier or the
/// test signer: OpenSSL's `dgst -sha256` (RSA PKCS#1 v1.5 over the raw bytes).
#[tokio::test]
async fn signature_wire_format_matches_openssl() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::ffi::OsStr;

    let server = CertServer::start(|_| vec![]).await;
    let anchors = anchors_file();
    let v = verifier(&server.config(&anchors));
    let url = server.url("cert/good.pem");
    let pki = Pki::get();

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("key.pem"), pki.leaf_key.rcgen.serialize_pem()).unwrap();
    std::fs::write(path("leaf.pem"), &pki.leaves["good"].0.pem).unwrap();
    std::fs::write(path("body.json"), EVENT_BODY).unwrap();
    let os = |p: &std::path::PathBuf| p.as_os_str().to_owned();

    // OpenSSL signs; the verifier accepts.
    let out = openssl(&[
        OsStr::new("dgst"),
        OsStr::new("-sha256"),
        OsStr::new("-sign"),
        &os(&path("key.pem")),
        OsStr::new("-out"),
        &os(&path("openssl.sig")),
        &os(&path("body.json")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let openssl_sig = std::fs::read(path("openssl.sig")).unwrap();
    let headers = signed_headers(&STANDARD.encode(&openssl_sig), &url, Style::Authorization);
    v.verify_callback(
        UnverifiedCallback::new(&headers, Bytes::from_static(EVENT_BODY.as_bytes())),
        now(),
    )
    .await
    .unwrap();

    // The test signer's signature is the same bytes (PKCS#1 v1.5 is deterministic)...
    let ours = STANDARD
        .decode(pki.leaf_key.sign(EVENT_BODY.as_bytes()))
        .unwrap();
    assert_eq!(ours, openssl_sig);

    // ...and OpenSSL verifies it with the key taken from the served certificate.
    std::fs::write(path("ours.sig"), &ours).unwrap();
    let out = openssl(&[
        OsStr::new("x509"),
        OsStr::new("-in"),
        &os(&path("leaf.pem")),
        OsStr::new("-pubkey"),
        OsStr::new("-noout"),
        OsStr::new("-out"),
        &os(&path("pub.pem")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |body: &str| {
        std::fs::write(path("check.json"), body).unwrap();
        openssl(&[
            OsStr::new("dgst"),
            OsStr::new("-sha256"),
            OsStr::new("-verify"),
            &os(&path("pub.pem")),
            OsStr::new("-signature"),
            &os(&path("ours.sig")),
            &os(&path("check.json")),
        ])
    };
    let out = verify(EVENT_BODY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    // OpenSSL, too, refuses the signature for a changed body.
    let out = verify(&EVENT_BODY.replace("updated", "created"));
    assert!(!out.status.success());
}

/// Counts counter increments by `name{label=value,…}`.
#[derive(Default)]
struct CountingRecorder {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

struct CountingCounter {
    key: String,
    counts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

impl metrics::CounterFn for CountingCounter {
    fn increment(&self, value: u64) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.counts.lock().unwrap().insert(self.key.clone(), value);
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        metrics::Counter::from_arc(std::sync::Arc::new(CountingCounter {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            counts: std::sync::Arc::clone(&self.counts),
        }))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn outcomes_are_counted_by_reason_and_header_style() {
    let recorder = CountingRecorder::default();
    // A current-thread runtime keeps every increment on this thread's local recorder.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let server = CertServer::start(|_| vec![]).await;
            let anchors = anchors_file();
            let v = verifier(&server.config(&anchors));
            let url = server.url("cert/good.pem");
            v.verify_callback(signed_callback(EVENT_BODY, &url, Style::MsSignature), now())
                .await
                .unwrap();
            v.verify_callback(signed_callback(EVENT_BODY, &url, Style::MsSignature), now())
                .await
                .unwrap();
            let cb = UnverifiedCallback::new(&HeaderMap::new(), Bytes::from_static(b"{}"));
            v.verify_callback(cb, now()).await.unwrap_err();
            let wrong_org = server.url("cert/wrong-org.pem");
            v.verify_callback(
                signed_callback(EVENT_BODY, &wrong_org, Style::Authorization),
                now(),
            )
            .await
            .unwrap_err();
        });
    });
    let counts = recorder.counts.lock().unwrap().clone();
    let expected: std::collections::HashMap<String, u64> = [
        ("refsync_webhook_accepted_total{header=x-ms-signature}", 2),
        (
            "refsync_webhook_rejected_total{reason=missing_signature}",
            1,
        ),
        (
            "refsync_webhook_rejected_total{reason=wrong_organization}",
            1,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);
}
