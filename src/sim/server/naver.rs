//! Naver Search Ad on the local server: `GET /ncc/campaigns` and `GET /stats`, each request
//! checked exactly as Naver documents its signing: `X-API-KEY` must be the issued key,
//! `X-Customer` a customer of the world, `X-Timestamp` milliseconds within five minutes of
//! now, and `X-Signature` base64(HMAC-SHA256(secret key, "{X-Timestamp}.GET.{path}")) for
//! the request's own path. Anything else is HTTP 401. Throttling is HTTP 429 with code 1016.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};

use super::{Fault, ServerState, credentials, world_error};
use crate::ingest::naver::sign::signature;
use crate::sim::serve::naver::{
    render_campaigns, render_stats, world_campaign_days, world_campaigns, world_customers,
};

/// How far `X-Timestamp` may be from the server's clock.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/ncc/campaigns", get(campaigns))
        .route("/stats", get(stats))
}

fn error(status: StatusCode, code: i64, title: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        json!({"code": code, "title": title}).to_string(),
    )
        .into_response()
}

/// Checks the signature headers for `GET <path>`; returns the customer on success.
async fn authorise(
    state: &ServerState,
    headers: &HeaderMap,
    path: &str,
) -> Result<String, Response> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let denied = |why: &str| error(StatusCode::UNAUTHORIZED, 1018, why);
    let (Some(ts), Some(key), Some(customer), Some(sig)) = (
        h("x-timestamp"),
        h("x-api-key"),
        h("x-customer"),
        h("x-signature"),
    ) else {
        return Err(denied(
            "X-Timestamp, X-API-KEY, X-Customer and X-Signature are required",
        ));
    };
    let Ok(ts_ms) = ts.trim().parse::<i64>() else {
        return Err(denied("X-Timestamp must be milliseconds since the epoch"));
    };
    if (Utc::now().timestamp_millis() - ts_ms).abs() > CLOCK_SKEW_MS {
        return Err(denied("X-Timestamp is too far from the current time"));
    }
    if key != credentials::NAVER_API_KEY {
        return Err(denied("Invalid API key"));
    }
    if sig != signature(credentials::NAVER_SECRET_KEY, ts_ms, "GET", path) {
        return Err(denied("Invalid signature"));
    }
    let customers = world_customers(&state.lake).await.map_err(world_error)?;
    if !customers.contains(&customer) {
        return Err(error(
            StatusCode::FORBIDDEN,
            1018,
            "No permission to access the resource.",
        ));
    }
    Ok(customer)
}

fn early_fault(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Throttle | Fault::QuotaSpent => Some(error(
            StatusCode::TOO_MANY_REQUESTS,
            1016,
            "Too many connections",
        )),
        Fault::ServerError => Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            "Service is currently undergoing scheduled maintenance.",
        )),
        _ => None,
    }
}

fn ok(body: String, fault: Fault) -> Response {
    let mut bytes = body.into_bytes();
    match fault {
        Fault::Truncate => bytes.truncate(bytes.len() / 2),
        Fault::Malform => {
            let text = String::from_utf8_lossy(&bytes)
                .replacen("\"salesAmt\":", "\"salesAmt\":\"n/a\",\"_was\":", 1)
                .replacen("\"nccCampaignId\":", "\"nccCampaignId\":null,\"_was\":", 1);
            bytes = text.into_bytes();
        }
        _ => {}
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        bytes,
    )
        .into_response()
}

/// The path Naver signs: the request path under this source's prefix.
fn api_path(uri: &Uri) -> &str {
    uri.path()
}

async fn campaigns(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let customer = match authorise(&state, &headers, api_path(&uri)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fault = state.admit("naver/campaigns").await;
    if let Some(r) = early_fault(fault) {
        return r;
    }
    match world_campaigns(&state.lake, &customer).await {
        Ok(c) => ok(render_campaigns(&customer, &c), fault),
        Err(e) => world_error(e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct StatsQuery {
    ids: String,
    fields: String,
    #[serde(rename = "timeRange")]
    time_range: String,
    #[serde(rename = "timeIncrement", default)]
    time_increment: Option<String>,
}

/// `ids` as Naver takes them: comma-separated, or a JSON array.
fn id_list(ids: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(ids) {
        Ok(v) => v,
        Err(_) => ids
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

async fn stats(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<StatsQuery>,
) -> Response {
    let customer = match authorise(&state, &headers, api_path(&uri)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fault = state.admit("naver/stats").await;
    if let Some(r) = early_fault(fault) {
        return r;
    }
    let invalid = |m: &str| {
        error(
            StatusCode::BAD_REQUEST,
            1002,
            &format!("Invalid request: {m}"),
        )
    };
    let Ok(fields) = serde_json::from_str::<Vec<String>>(&q.fields) else {
        return invalid("fields must be a JSON array");
    };
    let range: Option<(NaiveDate, NaiveDate)> = serde_json::from_str::<Value>(&q.time_range)
        .ok()
        .and_then(|v| {
            let d = |k: &str| NaiveDate::parse_from_str(v.get(k)?.as_str()?, "%Y-%m-%d").ok();
            Some((d("since")?, d("until")?))
        });
    let Some((since, until)) = range.filter(|(s, u)| s <= u) else {
        return invalid("timeRange must be {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"}");
    };
    if q.time_increment.as_deref() != Some("1") {
        return invalid("the local server serves timeIncrement=1 only");
    }
    let ids = id_list(&q.ids);
    if ids.is_empty() || ids.len() > 100 {
        return invalid("ids must name 1 to 100 objects");
    }
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    match world_campaign_days(&state.lake, &customer, since, until).await {
        Ok(days) => ok(render_stats(&days, &ids, &fields), fault),
        Err(e) => world_error(e),
    }
}
