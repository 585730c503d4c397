//! The device authorization grant: `POST /{tenant}/oauth2[/v2.0]/devicecode` hands out
//! a device code and a user code; a person approves it on the sign-in page at
//! `/devicelogin` (user code, user name, password — like the real page) or the control
//! API does it for them; the client polls the token endpoint meanwhile.

use super::grants::{Form, Version, error_response, parse_form, requested_access, required};
use super::{AadError, DeviceAuth, DeviceState, EntraAuthority};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use rand::RngExt;
use serde_json::json;
use uuid::Uuid;

/// Letters and digits a person will not confuse when typing a user code.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub(crate) fn routes(authority: EntraAuthority) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/devicecode", post(devicecode_v1))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode_v2))
        .route("/devicelogin", get(login_page).post(login_submit))
        .with_state(authority)
}

async fn devicecode_v1(
    State(a): State<EntraAuthority>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    devicecode(&a, &tenant, &headers, &parse_form(&body), Version::V1)
}

async fn devicecode_v2(
    State(a): State<EntraAuthority>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    devicecode(&a, &tenant, &headers, &parse_form(&body), Version::V2)
}

fn devicecode(
    a: &EntraAuthority,
    tenant: &str,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Response {
    match issue_device_code(a, tenant, headers, form, version) {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => error_response(a, headers, e),
    }
}

fn issue_device_code(
    a: &EntraAuthority,
    tenant: &str,
    headers: &HeaderMap,
    form: &Form,
    version: Version,
) -> Result<serde_json::Value, AadError> {
    if !a.tenant_matches(tenant) {
        return Err(AadError::tenant_not_found(tenant));
    }
    let client_id = required(form, "client_id")?;
    let app = Uuid::parse_str(client_id.trim())
        .map_err(|_| AadError::unknown_client(client_id, &a.tenant_id().to_string()))
        .and_then(|id| a.app(id))?;
    let access = requested_access(a, form, version, false)?;
    let mut rng = rand::rng();
    let user_code: String = (0..9)
        .map(|_| {
            let i = rng.random_range(0..USER_CODE_ALPHABET.len());
            char::from(USER_CODE_ALPHABET[i])
        })
        .collect();
    let mut raw = [0u8; 96];
    rand::fill(&mut raw);
    let device_code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let lifetime = a.inner.config.device_code_lifetime;
    let interval = a.inner.config.device_code_interval.as_secs();
    let expires_at =
        a.now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::seconds(900));
    a.state().devices.insert(
        device_code.clone(),
        DeviceAuth {
            user_code: user_code.clone(),
            client_id: app.client_id,
            access,
            expires_at,
            last_poll: None,
            state: DeviceState::Pending,
        },
    );
    let verification_uri = verification_uri(a, headers);
    let message = format!(
        "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
    );
    Ok(match version {
        // The v1 endpoint spells it `verification_url` and sends numbers as strings.
        Version::V1 => json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_url": verification_uri,
            "expires_in": lifetime.as_secs().to_string(),
            "interval": interval.to_string(),
            "message": message,
        }),
        Version::V2 => json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": verification_uri,
            "expires_in": lifetime.as_secs(),
            "interval": interval,
            "message": message,
        }),
    })
}

fn verification_uri(a: &EntraAuthority, headers: &HeaderMap) -> String {
    if let Some(base) = &a.inner.config.public_base_url {
        return format!("{}/devicelogin", base.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    format!("http://{host}/devicelogin")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>body{{font-family:Segoe UI,sans-serif;max-width:28rem;margin:4rem auto}}\
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem}}\
button{{margin:1rem .5rem 0 0;padding:.4rem 1.2rem}}.error{{color:#a80000}}</style></head>\
<body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn login_form(error: Option<&str>, user_code: &str, username: &str) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape_html(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<p>Enter the code displayed on your device, then sign in.</p>{error}\
<form method=\"post\" action=\"/devicelogin\">\
<label for=\"user_code\">Code</label><input id=\"user_code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\" required>\
<label for=\"username\">Email, phone, or Skype</label><input id=\"username\" name=\"username\" value=\"{}\" required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\">\
<button type=\"submit\" name=\"action\" value=\"approve\">Sign in</button>\
<button type=\"submit\" name=\"action\" value=\"decline\">Cancel</button></form>",
            escape_html(user_code),
            escape_html(username)
        ),
    )
}

async fn login_page() -> Html<String> {
    login_form(None, "", "")
}

async fn login_submit(State(a): State<EntraAuthority>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let user_code = form
        .get("user_code")
        .map(String::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    let username = form
        .get("username")
        .map(String::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let decline = form.get("action").is_some_and(|v| v == "decline");
    if decline {
        return match a.decline_device_code(&user_code) {
            Ok(()) => page(
                "Sign in",
                "<p>You have declined to sign in to the application on your device. You may now close this window.</p>",
            )
            .into_response(),
            Err(_) => (
                StatusCode::BAD_REQUEST,
                login_form(Some("That code didn't work. Check the code and try again."), &user_code, &username),
            )
                .into_response(),
        };
    }
    let Some(user) = a.user(&username) else {
        return (
            StatusCode::BAD_REQUEST,
            login_form(
                Some("This username may be incorrect. Make sure you typed it correctly."),
                &user_code,
                &username,
            ),
        )
            .into_response();
    };
    if !user.password_matches(password) {
        return (
            StatusCode::BAD_REQUEST,
            login_form(
                Some("Your account or password is incorrect."),
                &user_code,
                &username,
            ),
        )
            .into_response();
    }
    match a.approve_device_code(&user_code, &user.username) {
        Ok(()) => page(
            "Sign in",
            "<p>You have signed in to the application on your device. You may now close this window.</p>",
        )
        .into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            login_form(
                Some("That code didn't work. Check the code and try again."),
                &user_code,
                &username,
            ),
        )
            .into_response(),
    }
}
