//! The gate in front of every Web API call: a valid Entra bearer token for the
//! environment (crm.md §1.2), then the caller's service-protection limits (§1.12).
//! Refusals are answered in Dataverse's error shape and counted; admitted requests
//! carry their [`Caller`] to the handlers and leave with the rate-limit debug headers.

use super::Dataverse;
use super::api::Caller;
use super::error::DvError;
use crate::entra::AcceptedTokens;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// crm.md §1.2, §1.12: a valid token for the environment, then the caller's limits.
pub(crate) async fn guard(
    State(dv): State<Dataverse>,
    mut request: Request,
    next: Next,
) -> Response {
    let authority = dv.authority();
    let org = dv.org_url().to_owned();
    let validated = match bearer(request.headers()) {
        Some(token) => authority
            .validate_token(token, &org, AcceptedTokens::Any)
            .or_else(|e| match dv.config().api_host_url() {
                Some(api_host) => authority.validate_token(token, &api_host, AcceptedTokens::Any),
                None => Err(e),
            })
            .ok(),
        None => None,
    };
    let claims = match validated {
        Some(claims) => claims,
        None => {
            // Counted as a refusal by the authority, with the reason for the challenge.
            let err = match authority.authorize(request.headers(), &org, AcceptedTokens::Any) {
                Err(e) => DvError::unauthorized(&e),
                Ok(_) => DvError::new(StatusCode::UNAUTHORIZED, "", "The token is not valid."),
            };
            dv.count_response(err.status.as_u16(), false, true);
            return err.into_response();
        }
    };
    let user = dv.user_for(&claims);
    let permit = match dv.protection().admit(&claims.oid) {
        Ok(permit) => permit,
        Err(err) => {
            dv.count_response(err.status.as_u16(), false, false);
            return err.into_response();
        }
    };
    request.extensions_mut().insert(Caller { user });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // crm.md §1.12: debugging headers; clients must not drive logic from them.
    headers.insert(
        "x-ms-ratelimit-burst-remaining-xrm-requests",
        HeaderValue::from(permit.remaining_requests),
    );
    headers.insert(
        "x-ms-ratelimit-time-remaining-xrm-requests",
        HeaderValue::from(permit.remaining_execution_ms),
    );
    headers
        .entry("OData-Version")
        .or_insert(HeaderValue::from_static("4.0"));
    drop(permit);
    dv.count_response(response.status().as_u16(), true, false);
    response
}
