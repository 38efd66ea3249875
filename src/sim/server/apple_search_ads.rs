//! Apple Search Ads on the local server: Apple's OAuth client-credentials token endpoint at
//! `POST /auth/oauth2/token` (the client secret must be an ES256 JWT that verifies with the
//! simulated client's public key) and the Campaign Management API v5 campaign report at
//! `POST /api/v5/reports/campaigns` (bearer token, `X-AP-Context: orgId=...`, DAILY
//! granularity, at most 90 days, offset/limit paging of at most 1000 rows).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{NaiveDate, Utc};
use serde_json::Value;

use super::{Fault, ServerState, answer, credentials, tokens, world_error};
use crate::ingest::apple_search_ads::jwt::{public_key_point, verify_client_secret};
use crate::sim::serve::apple_search_ads::{
    CHANNEL, ORG_ID, error_body, range_days, render_report_page,
};
use crate::sim::serve::campaign_days::{account, campaign_days};

const TOKEN_PREFIX: &str = "asa-sim-";

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/auth/oauth2/token", post(token))
        .route("/api/v5/reports/campaigns", post(campaigns))
}

fn json(status: StatusCode, body: String) -> Response {
    answer(status, "application/json", body)
}

fn oauth_error(code: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": code }).to_string(),
    )
}

/// Apple documents the parameters in the query string of a form POST; the form body is read
/// too, as OAuth servers do.
async fn token(RawQuery(query): RawQuery, body: Bytes) -> Response {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return oauth_error("unsupported_grant_type");
    }
    if get("scope") != Some("searchadsorg") {
        return oauth_error("invalid_scope");
    }
    if get("client_id") != Some(credentials::APPLE_CLIENT_ID) {
        return oauth_error("invalid_client");
    }
    let Ok(point) = public_key_point(credentials::APPLE_PUBLIC_KEY_PEM) else {
        return world_error("the simulated client's public key does not parse");
    };
    let verified = get("client_secret").ok_or(()).and_then(|jwt| {
        verify_client_secret(jwt, &point, credentials::APPLE_KEY_ID, Utc::now()).map_err(|_| ())
    });
    match verified {
        Ok(claims)
            if claims.sub == credentials::APPLE_CLIENT_ID
                && claims.iss == credentials::APPLE_TEAM_ID =>
        {
            json(
                StatusCode::OK,
                serde_json::json!({
                    "access_token": tokens::issue(TOKEN_PREFIX),
                    "token_type": "Bearer",
                    "expires_in": tokens::CLAIMED_LIFE.as_secs(),
                    "scope": "searchadsorg",
                })
                .to_string(),
            )
        }
        _ => oauth_error("invalid_client"),
    }
}

fn api_error(status: StatusCode, code: &str, message: &str, field: &str) -> Response {
    json(status, error_body(code, message, field))
}

async fn campaigns(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !tokens::bearer_alive(&headers, TOKEN_PREFIX, state.faults.token_lifetime) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Invalid token",
            "",
        );
    }
    let world_account = match account(&state.lake, CHANNEL).await {
        Ok(a) => a,
        Err(e) => return world_error(e),
    };
    let org = headers
        .get("X-AP-Context")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("orgId="))
        .map(str::to_string);
    let org_id = match org.as_deref().and_then(|o| o.parse::<u64>().ok()) {
        Some(o) if o == ORG_ID || world_account.as_ref().is_some_and(|a| a.0 == o.to_string()) => o,
        _ => {
            return api_error(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "Missing or invalid X-AP-Context header: orgId is not an organization of this user",
                "X-AP-Context",
            );
        }
    };
    match state.admit("apple_search_ads/reports/campaigns").await {
        Fault::Throttle | Fault::QuotaSpent => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "1"),
            ],
            error_body(
                "TOO_MANY_REQUESTS",
                "You have exceeded the rate limit for this API. Try again later.",
                "",
            ),
        )
            .into_response(),
        Fault::ServerError => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "An internal error occurred.",
            "",
        ),
        fault => {
            let request: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_JSON_REQUEST",
                        "The request body is not valid JSON",
                        "",
                    );
                }
            };
            let date = |k: &str| {
                request
                    .get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            };
            let (Some(start), Some(end)) = (date("startTime"), date("endTime")) else {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATE_FORMAT",
                    "startTime and endTime must be yyyy-MM-dd",
                    "startTime",
                );
            };
            if request.get("granularity").and_then(Value::as_str) != Some("DAILY") {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ATTRIBUTE_VALUE",
                    "The simulated API serves DAILY granularity only",
                    "granularity",
                );
            }
            match range_days(start, end) {
                Some(1..=90) => {}
                Some(_) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_DATE_RANGE",
                        "Date range for DAILY granularity cannot exceed 90 days",
                        "endTime",
                    );
                }
                None => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_DATE_RANGE",
                        "startTime must not be after endTime",
                        "startTime",
                    );
                }
            }
            if !matches!(
                request.get("timeZone").and_then(Value::as_str),
                Some("ORTZ" | "UTC") | None
            ) {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ATTRIBUTE_VALUE",
                    "timeZone must be ORTZ or UTC",
                    "timeZone",
                );
            }
            let paging = request.pointer("/selector/pagination");
            let offset = paging
                .and_then(|p| p.get("offset"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let limit = paging
                .and_then(|p| p.get("limit"))
                .and_then(Value::as_u64)
                .unwrap_or(20);
            if limit == 0 || limit > 1000 {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ATTRIBUTE_VALUE",
                    "limit must be between 1 and 1000",
                    "selector.pagination.limit",
                );
            }
            let days = match campaign_days(&state.lake, CHANNEL, start, end).await {
                Ok(d) => d,
                Err(e) => return world_error(e),
            };
            let mut text = render_report_page(&days, org_id, offset as usize, limit as usize);
            match fault {
                Fault::Truncate => text.truncate(text.len() * 2 / 3),
                Fault::Malform => text.push_str("}]"),
                _ => {}
            }
            json(StatusCode::OK, text)
        }
    }
}
