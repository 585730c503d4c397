//! The token endpoints (`/{tenant}/oauth2/token` v1 and `/{tenant}/oauth2/v2.0/token` v2)
//! and the four grants: client credentials, password (ROPC), refresh token with
//! rotation, and device code.
//!
//! Differences between the endpoints that clients trip over are reproduced:
//! - v1 takes `resource=`, v2 takes `scope=<resource>/.default` (or `/user_impersonation`);
//! - v1 answers `expires_in`, `ext_expires_in`, `expires_on`, `not_before` as **strings**
//!   and echoes `resource`; v2 answers numbers and a `scope`;
//! - v2 issues a refresh token only when `offline_access` is requested; v1 always does
//!   for user grants; client credentials never get one (crm.md §1.2).

use super::{
    AadError, AppRegistration, DeviceState, EntraAuthority, RefreshGrant, RefreshState, UserAccount,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Scopes that are OpenID Connect requests rather than resource permissions.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Which token endpoint a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The resource a request wants a token for, and the OIDC extras it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestedAccess {
    pub(crate) resource: String,
    pub(crate) oidc: Vec<String>,
    pub(crate) version: Version,
}

impl RequestedAccess {
    fn wants(&self, scope: &str) -> bool {
        self.oidc.iter().any(|s| s == scope)
    }
}

pub(crate) type Form = HashMap<String, String>;

pub(crate) fn parse_form(body: &[u8]) -> Form {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn routes(authority: EntraAuthority) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .with_state(authority)
}

async fn token_v1(
    State(a): State<EntraAuthority>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&a, &tenant, &headers, &body, Version::V1)
}

async fn token_v2(
    State(a): State<EntraAuthority>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&a, &tenant, &headers, &body, Version::V2)
}

/// The correlation id Entra reports: the caller's `client-request-id`, or a new one.
pub(crate) fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::new_v4)
        .to_string()
}

pub(crate) fn error_response(a: &EntraAuthority, headers: &HeaderMap, e: AadError) -> Response {
    *a.state()
        .counters
        .errors
        .entry(e.error.to_owned())
        .or_default() += 1;
    tracing::debug!(error = %e, "token endpoint refused a request");
    e.into_response_at(a.now(), &correlation_id(headers))
}

fn token(
    a: &EntraAuthority,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Response {
    let form = parse_form(body);
    match grant(a, tenant, headers, &form, version) {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            // RFC 6749 §5.1: token responses must not be cached.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store, no-cache"),
            );
            response.headers_mut().insert(
                header::PRAGMA,
                axum::http::HeaderValue::from_static("no-cache"),
            );
            response
        }
        Err(e) => error_response(a, headers, e),
    }
}

fn grant(
    a: &EntraAuthority,
    tenant: &str,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Result<Value, AadError> {
    if !a.tenant_matches(tenant) {
        return Err(AadError::tenant_not_found(tenant));
    }
    let grant_type = required(form, "grant_type")?;
    match grant_type {
        "client_credentials" => client_credentials(a, headers, form, version),
        "password" => password(a, headers, form, version),
        "refresh_token" => refresh_token(a, headers, form, version),
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
            device_code(a, headers, form)
        }
        other => Err(AadError::unsupported_grant_type(other)),
    }
}

pub(crate) fn required<'f>(form: &'f Form, name: &str) -> Result<&'f str, AadError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AadError::missing_parameter(name))
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1: each form-urlencoded) or the form.
fn client_credentials_of(headers: &HeaderMap, form: &Form) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':').map(|(id, secret)| {
                let decode = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (decode(id), decode(secret))
            })
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    }
}

/// Authenticates the client. `public_flow` allows a public client without a secret.
pub(crate) fn authenticate_client(
    a: &EntraAuthority,
    headers: &HeaderMap,
    form: &Form,
    public_flow: bool,
) -> Result<AppRegistration, AadError> {
    let (client_id, secret) = client_credentials_of(headers, form);
    let client_id = client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| AadError::missing_parameter("client_id"))?;
    let tenant = a.tenant_id().to_string();
    let id = Uuid::parse_str(client_id.trim())
        .map_err(|_| AadError::unknown_client(&client_id, &tenant))?;
    let app = a.app(id)?;
    match secret.filter(|s| !s.is_empty()) {
        Some(secret) if app.secret_matches(&secret) => Ok(app),
        Some(_) => Err(AadError::invalid_client_secret(&app.client_id.to_string())),
        None if public_flow && app.public_client => Ok(app),
        None => Err(AadError::missing_client_credentials()),
    }
}

/// Works out the resource from `resource=` (v1) or `scope=` (v2).
pub(crate) fn requested_access(
    a: &EntraAuthority,
    form: &Form,
    version: Version,
    app_only: bool,
) -> Result<RequestedAccess, AadError> {
    let access = match version {
        Version::V1 => {
            let resource = required(form, "resource")?;
            let oidc = form
                .get("scope")
                .map(|s| {
                    s.split_whitespace()
                        .filter(|s| OIDC_SCOPES.contains(s))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            RequestedAccess {
                resource: resource.trim_end_matches('/').to_owned(),
                oidc,
                version,
            }
        }
        Version::V2 => parse_v2_scope(required(form, "scope")?, app_only)?,
    };
    if !a.inner.config.accepts_resource(&access.resource) {
        return Err(AadError::unknown_resource(
            &access.resource,
            &a.tenant_id().to_string(),
        ));
    }
    Ok(access)
}

fn parse_v2_scope(scope: &str, app_only: bool) -> Result<RequestedAccess, AadError> {
    let mut oidc = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for item in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&item) {
            oidc.push(item.to_owned());
            continue;
        }
        let (resource, permission) = match item.rsplit_once('/') {
            Some((r, p)) if r.contains("://") => (r.trim_end_matches('/').to_owned(), p),
            // A bare permission such as `User.Read` is a Microsoft Graph scope.
            _ => ("https://graph.microsoft.com".to_owned(), item),
        };
        if app_only && permission != ".default" {
            return Err(AadError::client_credentials_need_default(item));
        }
        if !resources.iter().any(|r| r.eq_ignore_ascii_case(&resource)) {
            resources.push(resource);
        }
    }
    match resources.as_slice() {
        [one] => Ok(RequestedAccess {
            resource: one.clone(),
            oidc,
            version: Version::V2,
        }),
        [] => Err(AadError::invalid_scope(format!(
            "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not name a resource; this emulator issues tokens for resources only."
        ))),
        _ => Err(AadError::invalid_scope(format!(
            "The provided value for the input parameter 'scope' is not valid. One or more scopes in '{scope}' are not compatible with each other."
        ))),
    }
}

fn client_credentials(
    a: &EntraAuthority,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Result<Value, AadError> {
    let app = authenticate_client(a, headers, form, false)?;
    let access = requested_access(a, form, version, true)?;
    let minted = a.mint_access_token(&app, None, &access.resource, "client_credentials")?;
    Ok(success(&access, &minted, false, None, None))
}

fn password(
    a: &EntraAuthority,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Result<Value, AadError> {
    let app = authenticate_client(a, headers, form, true)?;
    let username = required(form, "username")?;
    let password = required(form, "password")?;
    let access = requested_access(a, form, version, false)?;
    let user = a
        .user(username)
        .ok_or_else(|| AadError::unknown_user(username, &a.tenant_id().to_string()))?;
    if !user.password_matches(password) {
        return Err(AadError::bad_password());
    }
    user_tokens(a, &app, &user, &access, "password")
}

/// Access token, plus refresh and id tokens where the endpoint and scopes call for them.
fn user_tokens(
    a: &EntraAuthority,
    app: &AppRegistration,
    user: &UserAccount,
    access: &RequestedAccess,
    grant: &str,
) -> Result<Value, AadError> {
    let minted = a.mint_access_token(app, Some(user), &access.resource, grant)?;
    let wants_refresh = access.version == Version::V1 || access.wants("offline_access");
    let refresh = wants_refresh.then(|| new_refresh_token(a, app, user, &access.resource));
    let id_token = access
        .wants("openid")
        .then(|| id_token(a, app, user, access.version, minted.iat, minted.exp))
        .flatten();
    Ok(success(access, &minted, true, refresh, id_token))
}

fn new_refresh_token(
    a: &EntraAuthority,
    app: &AppRegistration,
    user: &UserAccount,
    resource: &str,
) -> String {
    let mut raw = [0u8; 48];
    rand::fill(&mut raw);
    // Entra's refresh tokens are long opaque strings starting `0.A`; keep that look.
    let token = format!(
        "0.A{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let now = a.now();
    a.state().refresh.insert(
        token.clone(),
        RefreshGrant {
            client_id: app.client_id,
            username: user.username.clone(),
            resource: resource.to_owned(),
            issued_at: now,
            last_used: now,
            state: RefreshState::Active,
        },
    );
    token
}

fn id_token(
    a: &EntraAuthority,
    app: &AppRegistration,
    user: &UserAccount,
    version: Version,
    iat: i64,
    exp: i64,
) -> Option<String> {
    let tid = a.tenant_id().to_string();
    let (iss, ver, name_claim) = match version {
        Version::V1 => (a.issuer(), "1.0", "upn"),
        Version::V2 => (
            format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "2.0",
            "preferred_username",
        ),
    };
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(app.client_id.to_string()));
    claims.insert("iss".into(), json!(iss));
    claims.insert("iat".into(), json!(iat));
    claims.insert("nbf".into(), json!(iat));
    claims.insert("exp".into(), json!(exp));
    claims.insert("name".into(), json!(user.display_name));
    claims.insert("oid".into(), json!(user.object_id.to_string()));
    claims.insert("sub".into(), json!(user.object_id.to_string()));
    claims.insert("tid".into(), json!(tid));
    claims.insert(name_claim.into(), json!(user.username));
    claims.insert("ver".into(), json!(ver));
    a.sign_id_token(&Value::Object(claims))
}

fn success(
    access: &RequestedAccess,
    minted: &super::MintedToken,
    is_user: bool,
    refresh_token: Option<String>,
    id_token: Option<String>,
) -> Value {
    let mut body = Map::new();
    body.insert("token_type".into(), json!("Bearer"));
    match access.version {
        Version::V1 => {
            if is_user {
                body.insert("scope".into(), json!("user_impersonation"));
            }
            body.insert("expires_in".into(), json!(minted.lifetime_secs.to_string()));
            body.insert(
                "ext_expires_in".into(),
                json!(minted.lifetime_secs.to_string()),
            );
            body.insert("expires_on".into(), json!(minted.exp.to_string()));
            body.insert("not_before".into(), json!(minted.iat.to_string()));
            body.insert("resource".into(), json!(access.resource));
        }
        Version::V2 => {
            if is_user {
                let mut scopes = vec![format!("{}/user_impersonation", access.resource)];
                scopes.extend(access.oidc.iter().cloned());
                body.insert("scope".into(), json!(scopes.join(" ")));
            }
            body.insert("expires_in".into(), json!(minted.lifetime_secs));
            body.insert("ext_expires_in".into(), json!(minted.lifetime_secs));
        }
    }
    body.insert("access_token".into(), json!(minted.token));
    if let Some(rt) = refresh_token {
        body.insert("refresh_token".into(), json!(rt));
    }
    if let Some(id) = id_token {
        body.insert("id_token".into(), json!(id));
    }
    Value::Object(body)
}

fn refresh_token(
    a: &EntraAuthority,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Result<Value, AadError> {
    let app = authenticate_client(a, headers, form, true)?;
    let presented = required(form, "refresh_token")?;
    let now = a.now();
    let grant = a
        .state()
        .refresh
        .get(presented)
        .cloned()
        .ok_or_else(AadError::malformed_grant)?;
    if grant.client_id != app.client_id {
        return Err(AadError::grant_for_other_client());
    }
    match grant.state {
        RefreshState::Revoked(at) => return Err(AadError::grant_revoked(at)),
        RefreshState::Rotated(at) if a.inner.config.invalidate_used_refresh_tokens => {
            return Err(AadError::grant_revoked(at));
        }
        _ => {}
    }
    let lifetime = chrono::Duration::from_std(a.inner.config.refresh_token_lifetime)
        .unwrap_or(chrono::Duration::days(90));
    if now >= grant.last_used + lifetime {
        return Err(AadError::refresh_token_expired(
            grant.issued_at,
            grant.last_used + lifetime,
        ));
    }
    // A refresh token is good for any resource (Entra's multi-resource refresh tokens);
    // without a scope/resource the original resource is reused.
    let has_target = match version {
        Version::V1 => form.contains_key("resource"),
        Version::V2 => form.contains_key("scope"),
    };
    let mut access = if has_target {
        requested_access(a, form, version, false)?
    } else {
        RequestedAccess {
            resource: grant.resource.clone(),
            oidc: Vec::new(),
            version,
        }
    };
    if version == Version::V2 && !access.wants("offline_access") {
        // Redeeming a refresh token implies offline access.
        access.oidc.push("offline_access".to_owned());
    }
    let user = a
        .user(&grant.username)
        .ok_or_else(|| AadError::unknown_user(&grant.username, &a.tenant_id().to_string()))?;
    if let Some(g) = a.state().refresh.get_mut(presented) {
        g.state = RefreshState::Rotated(now);
        g.last_used = now;
    }
    user_tokens(a, &app, &user, &access, "refresh_token")
}

/// Polls a device code. The code carries the endpoint version it was issued through,
/// which decides the response shape.
fn device_code(a: &EntraAuthority, headers: &HeaderMap, form: &Form) -> Result<Value, AadError> {
    let app = authenticate_client(a, headers, form, true)?;
    let code = form
        .get("device_code")
        .or_else(|| form.get("code"))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AadError::missing_parameter("device_code"))?;
    let now = a.now();
    let interval = chrono::Duration::from_std(a.inner.config.device_code_interval)
        .unwrap_or(chrono::Duration::seconds(5));
    let (access, username) = {
        let mut state = a.state();
        let device = state
            .devices
            .get_mut(code)
            .ok_or_else(AadError::bad_verification_code)?;
        if device.client_id != app.client_id {
            return Err(AadError::bad_verification_code());
        }
        if device.state == DeviceState::Redeemed {
            return Err(AadError::bad_verification_code());
        }
        if now >= device.expires_at {
            return Err(AadError::expired_token());
        }
        let too_fast = device.last_poll.is_some_and(|last| now - last < interval);
        device.last_poll = Some(now);
        match &device.state {
            DeviceState::Declined => return Err(AadError::authorization_declined()),
            DeviceState::Pending if too_fast => return Err(AadError::slow_down()),
            DeviceState::Pending => return Err(AadError::authorization_pending()),
            DeviceState::Approved(username) => {
                let username = username.clone();
                device.state = DeviceState::Redeemed;
                (device.access.clone(), username)
            }
            DeviceState::Redeemed => return Err(AadError::bad_verification_code()),
        }
    };
    let user = a
        .user(&username)
        .ok_or_else(|| AadError::unknown_user(&username, &a.tenant_id().to_string()))?;
    user_tokens(a, &app, &user, &access, "device_code")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_name_one_resource() {
        let r = parse_v2_scope(
            "https://api.partner.microsoft.com/.default offline_access openid",
            false,
        )
        .unwrap();
        assert_eq!(r.resource, "https://api.partner.microsoft.com");
        assert_eq!(r.oidc, vec!["offline_access", "openid"]);
        let r = parse_v2_scope("https://contoso.crm.dynamics.com//.default", true).unwrap();
        assert_eq!(r.resource, "https://contoso.crm.dynamics.com");
        let r =
            parse_v2_scope("https://contoso.crm.dynamics.com/user_impersonation", false).unwrap();
        assert_eq!(r.resource, "https://contoso.crm.dynamics.com");
    }

    #[test]
    fn v2_scope_errors() {
        let e = parse_v2_scope("https://api.partner.microsoft.com/user_impersonation", true)
            .unwrap_err();
        assert_eq!(e.code, 1002012);
        let e = parse_v2_scope(
            "https://api.partner.microsoft.com/.default https://contoso.crm.dynamics.com/.default",
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, 70011);
        let e = parse_v2_scope("openid offline_access", false).unwrap_err();
        assert_eq!(e.code, 70011);
    }
}
