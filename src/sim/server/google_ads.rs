//! Google Ads on the local server: the OAuth refresh-token grant at `POST /token` and
//! `POST /{version}/customers/{id}/googleAds:searchStream` with a GAQL query over `campaign`.
//! Requests need a live access token, the developer token and, for customers reached through
//! the manager account, a matching `login-customer-id`. Throttling is Google's 429
//! `RESOURCE_EXHAUSTED` naming a `retryDelay` of one second; a spent daily quota names one of
//! twelve hours.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use chrono::NaiveDate;
use regex::Regex;

use super::{Fault, ServerState, answer, credentials, tokens, world_error};
use crate::sim::serve::campaign_days::{account, campaign_days};
use crate::sim::serve::google_ads::{
    CHANNEL, CUSTOMER_ID, MANAGER_CUSTOMER_ID, SUPPORTED_FIELDS, error_body, render_search_stream,
};

const TOKEN_PREFIX: &str = "ya29.sim-";

/// What a throttled request is told to wait, in seconds.
pub const THROTTLE_RETRY_DELAY_SECS: u64 = 1;

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/token", post(token)).route(
        "/{version}/customers/{customer}/{method}",
        post(search_stream),
    )
}

fn json(status: StatusCode, body: String) -> Response {
    answer(status, "application/json; charset=UTF-8", body)
}

/// Google's refresh-token grant.
async fn token(Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str);
    if get("grant_type") != Some("refresh_token") {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}"#
                .into(),
        );
    }
    if get("client_id") != Some(credentials::GOOGLE_ADS_CLIENT_ID)
        || get("client_secret") != Some(credentials::GOOGLE_ADS_CLIENT_SECRET)
    {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error": "invalid_client", "error_description": "The OAuth client was not found."}"#.into(),
        );
    }
    if get("refresh_token") != Some(credentials::GOOGLE_ADS_REFRESH_TOKEN) {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error": "invalid_grant", "error_description": "Bad Request"}"#.into(),
        );
    }
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": tokens::issue(TOKEN_PREFIX),
            "expires_in": tokens::CLAIMED_LIFE.as_secs() - 1,
            "scope": "https://www.googleapis.com/auth/adwords",
            "token_type": "Bearer",
        })
        .to_string(),
    )
}

/// The parts of a GAQL query the simulated `campaign` resource understands.
#[derive(Debug, PartialEq, Eq)]
struct Gaql {
    fields: Vec<String>,
    from: NaiveDate,
    to: NaiveDate,
}

/// Reads `SELECT <fields> FROM campaign WHERE segments.date BETWEEN 'a' AND 'b'` (or
/// `= 'a'`), with an optional `ORDER BY` / `LIMIT` tail. Errors are Google's messages.
fn parse_gaql(query: &str) -> Result<Gaql, String> {
    let shape = Regex::new(
        r"(?is)^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+.+?)?(?:\s+LIMIT\s+\d+)?\s*$",
    )
    .map_err(|e| e.to_string())?;
    let caps = shape
        .captures(query)
        .ok_or_else(|| "Error in query: unexpected input.".to_string())?;
    let resource = &caps["resource"];
    if resource != "campaign" {
        return Err(format!(
            "The simulated API serves FROM campaign only, not {resource}."
        ));
    }
    let fields: Vec<String> = caps["fields"]
        .split(',')
        .map(|f| f.trim().to_string())
        .collect();
    if let Some(f) = fields
        .iter()
        .find(|f| !SUPPORTED_FIELDS.contains(&f.as_str()))
    {
        return Err(format!("Unrecognized field in the query: '{f}'."));
    }
    let filter = caps.name("where").map(|m| m.as_str()).unwrap_or("");
    let between = Regex::new(
        r"(?i)segments\.date\s+BETWEEN\s+'(\d{4}-\d{2}-\d{2})'\s+AND\s+'(\d{4}-\d{2}-\d{2})'",
    )
    .map_err(|e| e.to_string())?;
    let equals =
        Regex::new(r"(?i)segments\.date\s*=\s*'(\d{4}-\d{2}-\d{2})'").map_err(|e| e.to_string())?;
    let date = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("Invalid date '{s}'."))
    };
    let (from, to) = if let Some(c) = between.captures(filter) {
        (date(&c[1])?, date(&c[2])?)
    } else if let Some(c) = equals.captures(filter) {
        (date(&c[1])?, date(&c[1])?)
    } else {
        return Err(
            "Filtering for segments.date with a finite date range is required when segments.date is selected.".into(),
        );
    };
    Ok(Gaql { fields, from, to })
}

async fn search_stream(
    State(state): State<Arc<ServerState>>,
    Path((_version, customer, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != "googleAds:searchStream" {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}"#
                .into(),
        );
    }
    if !tokens::bearer_alive(&headers, TOKEN_PREFIX, state.faults.token_lifetime) {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "status": "UNAUTHENTICATED"}}"#.into(),
        );
    }
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    if header("developer-token") != Some(credentials::GOOGLE_ADS_DEVELOPER_TOKEN) {
        return json(
            StatusCode::UNAUTHORIZED,
            error_body(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential.",
                ("authenticationError", "DEVELOPER_TOKEN_INVALID"),
                "The developer token is not valid.",
                None,
            ),
        );
    }
    let world_account = match account(&state.lake, CHANNEL).await {
        Ok(a) => a,
        Err(e) => return world_error(e),
    };
    let known = customer == CUSTOMER_ID || world_account.as_ref().is_some_and(|a| a.0 == customer);
    let login_ok =
        header("login-customer-id").is_none_or(|l| l == MANAGER_CUSTOMER_ID || l == customer);
    if !known || !login_ok {
        return json(
            StatusCode::FORBIDDEN,
            error_body(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
                ("authorizationError", "USER_PERMISSION_DENIED"),
                "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.",
                None,
            ),
        );
    }
    match state
        .admit(&format!("google_ads/{customer}/searchStream"))
        .await
    {
        Fault::Throttle => {
            json(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                    ("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED"),
                    &format!("Too many requests. Retry in {THROTTLE_RETRY_DELAY_SECS} seconds."),
                    Some(THROTTLE_RETRY_DELAY_SECS),
                ),
            )
        }
        Fault::QuotaSpent => {
            json(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                    ("quotaError", "RESOURCE_EXHAUSTED"),
                    "Too many requests. Retry in 43200 seconds.",
                    Some(43_200),
                ),
            )
        }
        Fault::ServerError => {
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}}"#.into(),
            )
        }
        fault => {
            let query = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("query").and_then(|q| q.as_str()).map(str::to_string));
            let gaql = match query.as_deref().map(parse_gaql) {
                Some(Ok(q)) => q,
                Some(Err(m)) => {
                    return json(
                        StatusCode::BAD_REQUEST,
                        error_body(
                            400,
                            "INVALID_ARGUMENT",
                            "Request contains an invalid argument.",
                            ("queryError", "BAD_VALUE"),
                            &m,
                            None,
                        ),
                    );
                }
                None => {
                    return json(
                        StatusCode::BAD_REQUEST,
                        error_body(
                            400,
                            "INVALID_ARGUMENT",
                            "Request contains an invalid argument.",
                            ("requestError", "INVALID_INPUT"),
                            "The body has no query.",
                            None,
                        ),
                    );
                }
            };
            let days = match campaign_days(&state.lake, CHANNEL, gaql.from, gaql.to).await {
                Ok(d) => d,
                Err(e) => return world_error(e),
            };
            let mut text = render_search_stream(&days, &customer, &gaql.fields, "sim-request");
            match fault {
                Fault::Truncate => text.truncate(text.len() * 2 / 3),
                // Something after the array: a broken body no JSON reader takes.
                Fault::Malform => text.push_str("\n]{"),
                _ => {}
            }
            json(StatusCode::OK, text)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_connectors_query_is_understood() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let q = parse_gaql(&crate::ingest::google_ads::query(day)).unwrap();
        assert_eq!((q.from, q.to), (day, day));
        assert_eq!(q.fields.len(), crate::ingest::google_ads::FIELDS.len());
        let eq = parse_gaql("SELECT campaign.id FROM campaign WHERE segments.date = '2026-01-03'")
            .unwrap();
        assert_eq!(eq.from, NaiveDate::from_ymd_opt(2026, 1, 3).unwrap());
        assert!(
            parse_gaql("SELECT campaign.id FROM campaign")
                .unwrap_err()
                .contains("finite date range")
        );
        assert!(
            parse_gaql("SELECT ad_group.id FROM ad_group WHERE segments.date = '2026-01-03'")
                .is_err()
        );
        assert!(
            parse_gaql("SELECT campaign.foo FROM campaign WHERE segments.date = '2026-01-03'")
                .unwrap_err()
                .contains("campaign.foo")
        );
    }
}
