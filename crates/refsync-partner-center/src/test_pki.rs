//! Test support (feature `test-support`): a PKI built with rcgen, a certificate
//! server on 127.0.0.1:0, and helpers that sign callbacks the way Partner Center
//! does. Shared by this crate's callback tests and the service's endpoint tests, so
//! forged and genuine webhooks are built one way everywhere.
//!
//! Validity windows are relative to the real clock (a fixed window would turn
//! into a time bomb): "good" certificates are valid from a year ago to four years
//! ahead, so tests may use either [`now`] or the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use crate::callback::{
    CallbackVerifier, IntermediateUrlPrefix, UnverifiedCallback, VerifierConfig,
};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use tokio::sync::{Notify, Semaphore};

/// The DNS name Microsoft's dispatch certificate is issued for.
pub const DISPATCH_DNS: &str = "pcnotifications-dispatch.microsoft.com";
/// The organization the dispatch certificate names.
pub const MICROSOFT: &str = "Microsoft Corporation";

/// The time every test runs at unless it moves it: inside every "good" validity window.
pub fn now() -> DateTime<Utc> {
    static ANCHOR: OnceLock<DateTime<Utc>> = OnceLock::new();
    *ANCHOR.get_or_init(|| {
        let today = Utc::now().date_naive();
        Utc.from_utc_datetime(&today.and_hms_opt(0, 0, 0).unwrap())
    })
}

/// Start of the "good" leaf's validity window.
pub fn good_not_before() -> DateTime<Utc> {
    now() - chrono::Duration::days(365)
}

/// End of the "good" leaf's validity window.
pub fn good_not_after() -> DateTime<Utc> {
    now() + chrono::Duration::days(4 * 365)
}

/// Makes `p` valid from `from` to `to` days after [`now`] (negative: in the past).
fn set_validity(p: &mut CertificateParams, from: i64, to: i64) {
    let day = |days: i64| (now() + chrono::Duration::days(days)).date_naive();
    let (a, b) = (day(from), day(to));
    p.not_before = date_time_ymd(a.year(), a.month() as u8, a.day() as u8);
    p.not_after = date_time_ymd(b.year(), b.month() as u8, b.day() as u8);
}

/// A documented-shape event body, with spaces so that re-serialising changes it.
pub const EVENT_BODY: &str = r#"{ "EventName": "referral-updated", "ResourceUri": "https://api.partnercenter.microsoft.com/engagements/v1/referrals/c5fbb3b6-be74-4795-9fb5-4324c73fed37", "ResourceName": "referral", "AuditUri": null, "ResourceChangeUtcDate": "2026-05-31T23:59:00.1234567+00:00" }"#;

/// An RSA key usable both by rcgen (certificates) and aws-lc-rs (signing bodies).
pub struct RsaKey {
    /// The key for signing bodies (aws-lc-rs).
    pub signer: RsaKeyPair,
    /// The same key for issuing certificates (rcgen).
    pub rcgen: KeyPair,
}

impl RsaKey {
    fn generate() -> Self {
        let signer = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = signer.as_der().unwrap();
        let rcgen = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        Self { signer, rcgen }
    }

    /// Signs `body` (RSA PKCS#1 v1.5 SHA-256) and returns the base64 signature.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut sig = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), body, &mut sig)
            .unwrap();
        STANDARD.encode(sig)
    }
}

/// A CA: its params (rcgen needs them to issue) and key.
pub struct Ca {
    /// The parameters it was issued from (to issue children).
    pub params: CertificateParams,
    /// Its key.
    pub key: KeyPair,
    /// Its certificate, DER.
    pub der: Vec<u8>,
    /// Its certificate, PEM.
    pub pem: String,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn ca_params(cn: &str, org: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn(cn, Some(org));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut p, -6 * 365, 14 * 365);
    p
}

fn self_signed_ca(cn: &str, org: &str) -> Ca {
    let params = ca_params(cn, org);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key,
    }
}

fn intermediate_ca(cn: &str, org: &str, root: &Ca) -> Ca {
    let params = ca_params(cn, org);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.signed_by(&key, &root.issuer()).unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key,
    }
}

/// The parameters of a good dispatch leaf; variants tweak them.
pub fn leaf_params() -> CertificateParams {
    let mut p = CertificateParams::new(vec![DISPATCH_DNS.to_owned()]).unwrap();
    p.distinguished_name = dn(DISPATCH_DNS, Some(MICROSOFT));
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    set_validity(&mut p, -365, 4 * 365);
    p
}

/// An issued certificate: DER and PEM.
#[derive(Clone)]
pub struct Cert {
    /// DER encoding.
    pub der: Vec<u8>,
    /// PEM encoding.
    pub pem: String,
}

/// The DER of an AuthorityInfoAccess extension naming one caIssuers URL.
fn aia_extension(url: &str) -> CustomExtension {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    // id-ad-caIssuers 1.3.6.1.5.5.7.48.2
    let oid = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]);
    let uri = tlv(0x86, url.as_bytes());
    let desc = tlv(0x30, &[oid, uri].concat());
    let content = tlv(0x30, &desc);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], content)
}

/// The whole test PKI, generated once per test binary.
pub struct Pki {
    /// The trusted root.
    pub root: Ca,
    /// An intermediate under the root issuing "Microsoft Corporation" leaves.
    pub microsoft_ca: Ca,
    /// An intermediate under the root whose subject names another organization.
    pub contoso_ca: Ca,
    /// A root nobody trusts.
    pub rogue_root: Ca,
    /// An intermediate under the untrusted root.
    pub rogue_ca: Ca,
    /// The RSA key of the good leaves.
    pub leaf_key: RsaKey,
    /// Another RSA key, for signatures by the wrong key.
    pub other_key: RsaKey,
    /// An ECDSA key, for a leaf refsync must refuse (not RSA).
    pub ec_key: KeyPair,
    /// Named leaf certificates (see [`Pki::generate`]) with the CA that issued them.
    pub leaves: HashMap<&'static str, (Cert, Option<Cert>)>,
}

impl Pki {
    /// The PKI, generated on first use.
    pub fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::generate)
    }

    fn generate() -> Pki {
        let root = self_signed_ca("Refsync Test Root", "Refsync Test Trust");
        let microsoft_ca = intermediate_ca("Test Azure RSA TLS Issuing CA", MICROSOFT, &root);
        let contoso_ca = intermediate_ca("Contoso Issuing CA", "Contoso Ltd", &root);
        let rogue_root = self_signed_ca("Rogue Root", MICROSOFT);
        let rogue_ca = intermediate_ca("Rogue Issuing CA", MICROSOFT, &rogue_root);
        let leaf_key = RsaKey::generate();
        let other_key = RsaKey::generate();
        let ec_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();

        let issue = |params: &CertificateParams, key: &KeyPair, ca: &Ca| -> (Cert, Option<Cert>) {
            let cert = params.signed_by(key, &ca.issuer()).unwrap();
            (
                Cert {
                    der: cert.der().to_vec(),
                    pem: cert.pem(),
                },
                Some(Cert {
                    der: ca.der.clone(),
                    pem: ca.pem.clone(),
                }),
            )
        };
        let mut leaves = HashMap::new();
        let k = &leaf_key.rcgen;
        leaves.insert("good", issue(&leaf_params(), k, &microsoft_ca));

        let mut p = leaf_params();
        set_validity(&mut p, -6 * 365, -5 * 365);
        leaves.insert("expired", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        set_validity(&mut p, 9 * 365, 10 * 365);
        leaves.insert("not-yet-valid", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        p.distinguished_name = dn(DISPATCH_DNS, Some("Contoso Ltd"));
        leaves.insert("wrong-org", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        p.distinguished_name = dn(DISPATCH_DNS, Some("Microsoft Corporation Ltd"));
        leaves.insert("similar-org", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        p.distinguished_name = dn(DISPATCH_DNS, None);
        leaves.insert("issuer-org-only", issue(&p, k, &microsoft_ca));
        leaves.insert("no-org", issue(&p, k, &contoso_ca));

        let mut p = leaf_params();
        p.subject_alt_names = vec![rcgen::SanType::DnsName(
            "evil.example.com".try_into().unwrap(),
        )];
        p.distinguished_name = dn("evil.example.com", Some(MICROSOFT));
        leaves.insert("other-dns", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        leaves.insert("client-auth-only", issue(&p, k, &microsoft_ca));

        let mut p = leaf_params();
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        leaves.insert("no-digital-signature", issue(&p, k, &microsoft_ca));

        leaves.insert("ecdsa", issue(&leaf_params(), &ec_key, &microsoft_ca));
        leaves.insert("untrusted-root", issue(&leaf_params(), k, &rogue_ca));

        let self_signed = leaf_params().self_signed(k).unwrap();
        leaves.insert(
            "self-signed",
            (
                Cert {
                    der: self_signed.der().to_vec(),
                    pem: self_signed.pem(),
                },
                None,
            ),
        );

        Pki {
            root,
            microsoft_ca,
            contoso_ca,
            rogue_root,
            rogue_ca,
            leaf_key,
            other_key,
            ec_key,
            leaves,
        }
    }

    /// The leaf followed by its issuer, PEM.
    pub fn chain_pem(&self, name: &str) -> String {
        let (leaf, issuer) = &self.leaves[name];
        let mut pem = leaf.pem.clone();
        if let Some(issuer) = issuer {
            pem.push_str(&issuer.pem);
        }
        pem
    }

    /// A leaf with an AIA caIssuers URL, issued by the Microsoft test CA.
    pub fn leaf_with_aia(&self, url: &str) -> Cert {
        let mut p = leaf_params();
        p.custom_extensions = vec![aia_extension(url)];
        let cert = p
            .signed_by(&self.leaf_key.rcgen, &self.microsoft_ca.issuer())
            .unwrap();
        Cert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
        }
    }
}

/// What the certificate server answers for a path.
#[derive(Clone)]
pub enum Served {
    /// The bytes, with a Content-Length.
    File(Vec<u8>),
    /// Streamed in chunks, without Content-Length.
    Streamed(Vec<u8>),
    /// A 302 to this location.
    Redirect(String),
    /// Never answers.
    Hang,
    /// Waits for [`CertServer::release`] before answering with the file.
    Gated(Vec<u8>),
}

struct ServerState {
    files: HashMap<String, Served>,
    hits: Mutex<HashMap<String, usize>>,
    first_hit: Notify,
    /// Gated responses wait for a permit; `release` hands out plenty.
    release: Semaphore,
}

/// A certificate server on 127.0.0.1:0 that counts requests per path.
pub struct CertServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CertServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CertServer {
    /// Starts the server with the standard files, plus `extra` from the closure
    /// (which gets the base URL, e.g. to build AIA URLs).
    pub async fn start(extra: impl FnOnce(&str) -> Vec<(String, Served)>) -> CertServer {
        let pki = Pki::get();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");

        let mut files: HashMap<String, Served> = HashMap::new();
        for name in pki.leaves.keys() {
            files.insert(
                format!("cert/{name}.pem"),
                Served::File(pki.chain_pem(name).into_bytes()),
            );
        }
        let (good_leaf, good_issuer) = &pki.leaves["good"];
        let good_issuer = good_issuer.as_ref().unwrap();
        files.insert(
            "cert/good-leaf-only.cer".into(),
            Served::File(good_leaf.der.clone()),
        );
        files.insert(
            "cert/good-chain.der".into(),
            Served::File([good_leaf.der.clone(), good_issuer.der.clone()].concat()),
        );
        files.insert(
            "other/good.pem".into(),
            Served::File(pki.chain_pem("good").into_bytes()),
        );
        files.insert(
            "cert/moved.pem".into(),
            Served::Redirect("/cert/good.pem".into()),
        );
        files.insert(
            "cert/escape.pem".into(),
            Served::Redirect("/other/good.pem".into()),
        );
        files.insert(
            "cert/escape-absolute.pem".into(),
            Served::Redirect(format!("{base}/other/good.pem")),
        );
        files.insert(
            "cert/escape-dots.pem".into(),
            Served::Redirect("/cert/x/%2e%2e/good.pem".into()),
        );
        files.insert(
            "cert/garbage.pem".into(),
            Served::File(b"this is not a certificate".to_vec()),
        );
        let mut huge = pki.chain_pem("good").into_bytes();
        huge.resize(100 * 1024, b'\n');
        files.insert("cert/huge.pem".into(), Served::File(huge.clone()));
        files.insert("cert/huge-streamed.pem".into(), Served::Streamed(huge));
        files.insert("cert/slow.pem".into(), Served::Hang);
        files.insert(
            "cert/gated.pem".into(),
            Served::Gated(pki.chain_pem("good").into_bytes()),
        );
        files.insert(
            "pki/microsoft-ca.der".into(),
            Served::File(pki.microsoft_ca.der.clone()),
        );
        files.extend(extra(&base));

        let state = Arc::new(ServerState {
            files,
            hits: Mutex::new(HashMap::new()),
            first_hit: Notify::new(),
            release: Semaphore::new(0),
        });
        let app = Router::new()
            .route("/{*path}", get(serve))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CertServer { addr, state, task }
    }

    /// The absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Requests received for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        let hits = self.state.hits.lock().unwrap();
        hits.get(path.trim_start_matches('/')).copied().unwrap_or(0)
    }

    /// Requests received for any path.
    pub fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// Resolves once a gated path has been requested.
    pub async fn first_gated_hit(&self) {
        self.state.first_hit.notified().await;
    }

    /// Lets gated responses go.
    pub fn release(&self) {
        self.state.release.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// A verifier configuration trusting the test root, for this server's `/cert/`.
    pub fn config(&self, anchors: &tempfile::NamedTempFile) -> VerifierConfig {
        VerifierConfig::for_local(&self.url("cert/"), anchors.path()).unwrap()
    }

    /// The same, with AIA intermediates allowed from this server's `/pki/`.
    pub fn config_with_aia(&self, anchors: &tempfile::NamedTempFile) -> VerifierConfig {
        let mut config = self.config(anchors);
        config.intermediate_url_prefixes =
            vec![IntermediateUrlPrefix::parse(&self.url("pki/")).unwrap()];
        config
    }
}

async fn serve(State(state): State<Arc<ServerState>>, Path(path): Path<String>) -> Response {
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    match state.files.get(&path).cloned() {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Served::File(bytes)) => bytes.into_response(),
        Some(Served::Streamed(bytes)) => {
            let chunks: Vec<Result<Bytes, Infallible>> = bytes
                .chunks(8 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        Some(Served::Redirect(to)) => (
            StatusCode::FOUND,
            [(header::LOCATION, HeaderValue::from_str(&to).unwrap())],
        )
            .into_response(),
        Some(Served::Hang) => std::future::pending::<Response>().await,
        Some(Served::Gated(bytes)) => {
            state.first_hit.notify_one();
            let _permit = state.release.acquire().await.unwrap();
            bytes.into_response()
        }
    }
}

/// A PEM file holding the test root, as the emulator writes one.
pub fn anchors_file() -> tempfile::NamedTempFile {
    pem_file(&Pki::get().root.pem)
}

/// A temporary file with `contents`.
pub fn pem_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file.flush().unwrap();
    file
}

/// Which header carries the signature.
#[derive(Clone, Copy, Debug)]
pub enum Style {
    /// `Authorization: Signature <base64>`.
    Authorization,
    /// `x-ms-signature: Signature <base64>`.
    MsSignature,
}

/// Headers of a well-formed callback.
pub fn signed_headers(signature_b64: &str, certificate_url: &str, style: Style) -> HeaderMap {
    let mut h = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Signature {signature_b64}")).unwrap();
    match style {
        Style::Authorization => h.insert(header::AUTHORIZATION, value),
        Style::MsSignature => h.insert("x-ms-signature", value),
    };
    h.insert(
        "x-ms-certificate-url",
        HeaderValue::from_str(certificate_url).unwrap(),
    );
    h.insert(
        "x-ms-signature-algorithm",
        HeaderValue::from_static("rsa-sha256"),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h
}

/// A callback carrying `body` signed with the good leaf key.
pub fn signed_callback(body: &str, certificate_url: &str, style: Style) -> UnverifiedCallback {
    let sig = Pki::get().leaf_key.sign(body.as_bytes());
    UnverifiedCallback::new(
        &signed_headers(&sig, certificate_url, style),
        Bytes::copy_from_slice(body.as_bytes()),
    )
}

/// A verifier for `config`.
pub fn verifier(config: &VerifierConfig) -> CallbackVerifier {
    CallbackVerifier::new(config).unwrap()
}
