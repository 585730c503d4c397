//! A faithful local Partner Center: the co-sell Referrals API, the webhook
//! registration API, and signed webhook delivery (partner-center.md §1, §2), with
//! Entra ID token endpoints on the same listener and fault injection.
//!
//! | path | what | modules |
//! |---|---|---|
//! | `/v1.0/engagements/referrals[/{id}]` | list (OData, paging), get, create, PATCH, obsolete PUT | `referrals_api`, `operations`, `query`, `patch`, `lifecycle`, `access` |
//! | `/webhooks/v1/registration[/events, /validationEvents[/{id}]]` | registration, event names, test events | `registration` |
//! | `/cert/{dns name}.cer`, `/cert/intermediate.cer` | the signing certificate and its issuer | `signing` |
//! | `/{tenant}/oauth2/…`, `/devicelogin` | Entra ID | [`crate::entra`] |
//! | `/_emulator/partner-center/…` | control API: act as Microsoft, delivery log, offline queue, delivery faults | `control`, `microsoft`, [`delivery`] |
//! | `/_emulator/faults` | HTTP fault injection in Partner Center's error shape | [`crate::faults`] |
//!
//! Where the reference notes leave behaviour unconfirmed, [`PartnerCenterConfig`]
//! has a setting, and the module that decides says what it chose: e.g. POST of a
//! second registration is 409, a PUT without `If-Match` is 400, a `replace` of an
//! absent property adds it, string comparisons in `$filter` are case-sensitive.
//!
//! Every referral change made through the API or the control API raises the
//! documented events, delivered by [`delivery`] to the registered URL with
//! retries, an offline queue and a delivery log. Each control operation is also a
//! Rust method on [`PartnerCenterEmulator`], so tests and the demo can drive the
//! emulator without HTTP.
//!
//! Start one with [`PartnerCenterEmulator::start`] (own Entra tenant) or
//! [`PartnerCenterEmulator::start_with_authority`] (shared tenant), or build it with
//! [`PartnerCenterEmulator::new`] and mount [`PartnerCenterEmulator::router`] yourself.

mod access;
pub mod config;
mod control;
pub mod delivery;
mod error;
mod idempotency;
mod lifecycle;
mod microsoft;
mod operations;
mod patch;
mod query;
mod referrals_api;
mod registration;
mod signing;
mod store;

pub use config::{CertificateConfig, CertificateFileFormat, DeliveryConfig, PartnerCenterConfig};
pub use control::{ControlError, DeliveryLog};
pub use delivery::{
    DeliveryAttempt, DeliveryFaultKind, DeliveryFaultRule, DeliveryFaultStatus, DeliveryRecord,
    DeliveryState, OfflineEntry, SignatureHeader,
};
pub use error::ApiError;
pub use microsoft::{CoSellPair, MicrosoftChange, MicrosoftUpdate};
pub use registration::{SUPPORTED_EVENTS, WebhookRegistration};
pub use signing::SigningError;

use crate::cosell_data::{CosellConfig, CosellGenerator};
use crate::entra::{EntraAuthority, EntraError};
use crate::faults::{FaultInjector, responders};
use crate::server::{EmulatorHandle, ServeError, serve};
use access::is_own;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use delivery::{DeliveryClientError, DeliveryEngine, EventToSend};
use idempotency::IdempotencyCache;
use registration::RegistrationState;
use signing::{ChainSpec, SigningChain};
use std::sync::{Arc, Mutex, MutexGuard};
use store::ReferralStore;
use tokio::net::TcpListener;
use url::Url;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The Entra tenant could not be created.
    #[error("entra: {0}")]
    Entra(#[from] EntraError),
    /// The signing chain could not be generated.
    #[error("signing certificate: {0}")]
    Signing(#[from] SigningError),
    /// The webhook HTTP client could not be built.
    #[error(transparent)]
    Delivery(#[from] DeliveryClientError),
    /// The listener could not be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// `public_base_url` is not a URL.
    #[error("public base URL {0:?} is not a URL")]
    BaseUrl(String),
}

/// A change to one referral, from which events are raised.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub id: String,
    pub created: bool,
    pub at: DateTime<Utc>,
}

/// Mutable state, behind one lock so a change and its events are ordered together.
pub(crate) struct EmulatorState {
    pub store: ReferralStore,
    pub idempotency: IdempotencyCache,
    pub registration: RegistrationState,
    pub generator: CosellGenerator,
}

struct Inner {
    config: PartnerCenterConfig,
    /// Advertised base URL, without a trailing `/`.
    base_url: String,
    authority: EntraAuthority,
    faults: FaultInjector,
    chain: Arc<SigningChain>,
    certificate_url: String,
    delivery: DeliveryEngine,
    state: Mutex<EmulatorState>,
}

/// One emulated Partner Center (cheap to clone; clones share everything).
#[derive(Clone)]
pub struct PartnerCenterEmulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PartnerCenterEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerCenterEmulator")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl PartnerCenterEmulator {
    /// Builds the emulator for `base_url` (where it will be reachable; overridden by
    /// `config.public_base_url`), validating tokens with `authority`. Generates the
    /// signing chain. Serve [`PartnerCenterEmulator::router`] yourself, inside a Tokio
    /// runtime (deliveries run on spawned tasks).
    pub fn new(
        config: PartnerCenterConfig,
        authority: EntraAuthority,
        base_url: &Url,
    ) -> Result<Self, StartError> {
        let base_url = match &config.public_base_url {
            Some(public) => Url::parse(public)
                .map_err(|_| StartError::BaseUrl(public.clone()))?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            None => base_url.as_str().trim_end_matches('/').to_owned(),
        };
        let intermediate_url = format!("{base_url}/cert/intermediate.cer");
        let certificate_url = format!("{base_url}/cert/{}.cer", config.certificate.dns_name);
        let chain = Arc::new(SigningChain::generate(&ChainSpec {
            organization: &config.certificate.organization,
            dns_name: &config.certificate.dns_name,
            intermediate_url: &intermediate_url,
            now: authority.now(),
        })?);
        let delivery = DeliveryEngine::new(
            config.delivery.clone(),
            certificate_url.clone(),
            Arc::clone(&chain),
        )?;
        let state = EmulatorState {
            store: ReferralStore::default(),
            idempotency: IdempotencyCache::new(config.request_id_window),
            registration: RegistrationState::default(),
            generator: CosellGenerator::new(CosellConfig {
                seed: config.seed,
                partner: config.partner.clone(),
                ..CosellConfig::default()
            }),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                base_url,
                authority,
                faults: FaultInjector::new(responders::partner_center()),
                chain,
                certificate_url,
                delivery,
                state: Mutex::new(state),
            }),
        })
    }

    /// Starts on `listener` with its own Entra tenant (`config.entra`).
    pub fn start(
        config: PartnerCenterConfig,
        listener: TcpListener,
    ) -> Result<PartnerCenterServer, StartError> {
        let authority = EntraAuthority::new(config.entra.clone())?;
        Self::start_with_authority(config, authority, listener)
    }

    /// Starts on `listener`, validating tokens with (and serving the token
    /// endpoints of) a shared `authority`.
    pub fn start_with_authority(
        config: PartnerCenterConfig,
        authority: EntraAuthority,
        listener: TcpListener,
    ) -> Result<PartnerCenterServer, StartError> {
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: "listener".to_owned(),
            source,
        })?;
        let listening = Url::parse(&format!("http://{addr}/"))
            .map_err(|_| StartError::BaseUrl(addr.to_string()))?;
        let emulator = Self::new(config, authority, &listening)?;
        let server = serve(emulator.router(), listener)?;
        Ok(PartnerCenterServer {
            emulator: emulator.clone(),
            server: Some(server),
        })
    }

    /// Every route: the two APIs, the certificate files, the control API, Entra's
    /// endpoints, all behind the fault injector.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route(
                "/v1.0/engagements/referrals",
                get(referrals_api::list).post(referrals_api::create),
            )
            .route(
                "/v1.0/engagements/referrals/{id}",
                get(referrals_api::get_one)
                    .patch(referrals_api::patch)
                    .put(referrals_api::put),
            )
            .route(
                "/webhooks/v1/registration",
                get(registration::get_registration)
                    .post(registration::create_registration)
                    .put(registration::update_registration),
            )
            .route(
                "/webhooks/v1/registration/events",
                get(registration::list_events),
            )
            .route(
                "/webhooks/v1/registration/validationEvents",
                post(registration::post_validation_event),
            )
            .route(
                "/webhooks/v1/registration/validationEvents/{correlation_id}",
                get(registration::get_validation_event),
            )
            .layer(middleware::from_fn(request_ids))
            .route("/cert/{file}", get(certificate_file))
            .nest("/_emulator/partner-center", control::router())
            .fallback(not_found)
            .with_state(self.clone());
        self.inner
            .faults
            .mount(api.merge(self.inner.authority.router()))
    }

    /// The advertised base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The settings.
    pub fn config(&self) -> &PartnerCenterConfig {
        &self.inner.config
    }

    /// The Entra tenant tokens are validated against.
    pub fn authority(&self) -> &EntraAuthority {
        &self.inner.authority
    }

    /// The HTTP fault injector (`/_emulator/faults`).
    pub fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// The root certificate (PEM) deliveries chain to: the trust anchor a
    /// callback verifier needs (`--ca-out`).
    pub fn root_ca_pem(&self) -> &str {
        &self.inner.chain.root_pem
    }

    /// The intermediate certificate (PEM).
    pub fn intermediate_pem(&self) -> &str {
        &self.inner.chain.intermediate_pem
    }

    /// The leaf certificate deliveries are signed with (PEM).
    pub fn leaf_pem(&self) -> &str {
        &self.inner.chain.leaf_pem
    }

    /// The `x-ms-certificate-url` of deliveries: `{base}/cert/{dns name}.cer`.
    pub fn certificate_url(&self) -> &str {
        &self.inner.certificate_url
    }

    /// The `ResourceUri` of a referral's events.
    pub fn resource_uri(&self, referral_id: &str) -> String {
        self.inner
            .config
            .resource_uri_template
            .replace("{base}", &self.inner.base_url)
            .replace("{id}", referral_id)
    }

    /// An event for `referral_id`, built and signed exactly as the dispatcher sends it
    /// (same body bytes, same headers), without sending it. For load generators such
    /// as `refsync bench intake`, which need genuine webhooks faster than deliveries.
    pub fn signed_event(
        &self,
        event_name: &str,
        referral_id: &str,
        changed_at: DateTime<Utc>,
        header: SignatureHeader,
    ) -> Result<SignedEvent, SigningError> {
        let body = delivery::event_body(
            event_name,
            &self.resource_uri(referral_id),
            "referral",
            changed_at,
        );
        let signature = self.inner.chain.sign(&body)?;
        let signature_header = match header {
            SignatureHeader::Authorization => "authorization",
            SignatureHeader::MsSignature => "x-ms-signature",
        };
        Ok(SignedEvent {
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                (
                    "x-ms-certificate-url".to_owned(),
                    self.inner.certificate_url.clone(),
                ),
                (
                    "x-ms-signature-algorithm".to_owned(),
                    "rsa-sha256".to_owned(),
                ),
                (
                    signature_header.to_owned(),
                    format!("Signature {signature}"),
                ),
            ],
            body,
        })
    }

    /// The emulator's clock: the Entra authority's, so advancing it moves both.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.authority.now()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, EmulatorState> {
        // A poisoned lock follows a panic mid-request; the data is still consistent enough to serve.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn delivery(&self) -> &DeliveryEngine {
        &self.inner.delivery
    }

    /// Raises the events of `changes` (state already updated, lock held so events
    /// keep the order of the changes): `referral-*` for the partner's own
    /// referrals, `related-referral-*` for another organization's referral in an
    /// engagement the partner has a referral in (§2.2).
    pub(crate) fn emit(&self, state: &EmulatorState, changes: &[Change]) {
        let Some(registration) = state.registration.registration.clone() else {
            return;
        };
        let own = self.inner.config.partner.organization_id.as_str();
        for change in changes {
            let Some(referral) = state.store.get(&change.id) else {
                continue;
            };
            let related = || {
                referral.engagement_id().is_some_and(|e| {
                    state
                        .store
                        .engagement(e)
                        .iter()
                        .filter_map(|id| state.store.get(id))
                        .any(|other| is_own(other, own))
                })
            };
            let event = match (is_own(referral, own), change.created) {
                (true, true) => "referral-created",
                (true, false) => "referral-updated",
                (false, true) if related() => "related-referral-created",
                (false, false) if related() => "related-referral-updated",
                _ => continue,
            };
            self.send_event(
                &registration,
                event,
                &self.resource_uri(&change.id),
                "referral",
                change.at,
            );
        }
    }

    /// Queues one event for delivery if the registration subscribes to it.
    pub(crate) fn send_event(
        &self,
        registration: &WebhookRegistration,
        event_name: &str,
        resource_uri: &str,
        resource_name: &str,
        at: DateTime<Utc>,
    ) -> Option<u64> {
        registration.subscribes_to(event_name).then(|| {
            self.inner.delivery.enqueue(EventToSend {
                event_name: event_name.to_owned(),
                resource_uri: resource_uri.to_owned(),
                resource_name: resource_name.to_owned(),
                changed_at: at,
                url: registration.webhook_url.clone(),
                header: registration.signature_header(),
            })
        })
    }
}

/// A running Partner Center emulator: the emulator plus its server.
/// Dereferences to [`PartnerCenterEmulator`].
#[derive(Debug)]
pub struct PartnerCenterServer {
    emulator: PartnerCenterEmulator,
    server: Option<EmulatorHandle>,
}

impl std::ops::Deref for PartnerCenterServer {
    type Target = PartnerCenterEmulator;

    fn deref(&self) -> &PartnerCenterEmulator {
        &self.emulator
    }
}

impl PartnerCenterServer {
    /// The emulator (clone it to keep driving it after the server is gone).
    pub fn emulator(&self) -> &PartnerCenterEmulator {
        &self.emulator
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(EmulatorHandle::local_addr)
    }

    /// `{base}{path}`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.emulator.base_url())
        } else {
            format!("{}/{path}", self.emulator.base_url())
        }
    }

    /// Stops retrying deliveries and stops the server, waiting for in-flight requests.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.emulator.delivery().stop();
        match self.server.take() {
            Some(server) => server.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Drop for PartnerCenterServer {
    fn drop(&mut self) {
        // The server stops when its handle drops; pending retries stop with it.
        if self.server.is_some() {
            self.emulator.delivery().stop();
        }
    }
}

/// Echoes `MS-CorrelationId` and `MS-RequestId` on API responses (generating
/// them when absent), as Partner Center's responses carry both.
async fn request_ids(request: Request, next: Next) -> Response {
    let correlation = echo_or_new(&request, "ms-correlationid");
    let request_id = echo_or_new(&request, "ms-requestid");
    let mut response = next.run(request).await;
    for (name, value) in [
        ("ms-correlationid", correlation),
        ("ms-requestid", request_id),
    ] {
        if let Some(value) = value {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn echo_or_new(request: &Request, name: &str) -> Option<HeaderValue> {
    request
        .headers()
        .get(name)
        .cloned()
        .or_else(|| HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok())
}

/// `/cert/{dns name}.cer` (the leaf, DER or a PEM bundle) and `/cert/intermediate.cer`
/// (the issuer, DER, as AIA caIssuers files are).
async fn certificate_file(
    State(pc): State<PartnerCenterEmulator>,
    Path(file): Path<String>,
) -> Response {
    let chain = &pc.inner.chain;
    let leaf_file = format!("{}.cer", pc.inner.config.certificate.dns_name);
    let der = |bytes: &[u8]| {
        (
            [(header::CONTENT_TYPE, "application/pkix-cert")],
            bytes.to_vec(),
        )
            .into_response()
    };
    if file.eq_ignore_ascii_case(&leaf_file) {
        match pc.inner.config.certificate.file_format {
            CertificateFileFormat::LeafDer => der(&chain.leaf_der),
            CertificateFileFormat::PemBundle => (
                [(header::CONTENT_TYPE, "application/x-pem-file")],
                format!("{}{}", chain.leaf_pem, chain.intermediate_pem),
            )
                .into_response(),
        }
    } else if file.eq_ignore_ascii_case("intermediate.cer") {
        der(&chain.intermediate_der)
    } else {
        (StatusCode::NOT_FOUND, "no such certificate").into_response()
    }
}

async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    )
    .into_response()
}

/// A webhook as the dispatcher would send it: headers and the exact body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// Header names (lower case) and values, signature included.
    pub headers: Vec<(String, String)>,
    /// The signed body.
    pub body: Vec<u8>,
}
