//! Google Sheets on the local server: `GET /v4/spreadsheets/{id}/values/{range}?key=...`,
//! with the API's own quota answer (HTTP 429, `RESOURCE_EXHAUSTED`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Fault, ServerState, answer, credentials, world_error};
use crate::ingest::sheets::SheetRange;
use crate::sim::serve::sheets::render_values;

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/v4/spreadsheets/{id}/values/{range}", get(values))
}

fn google_error(status: StatusCode, code: u16, kind: &str, message: &str) -> Response {
    answer(
        status,
        "application/json",
        format!(
            "{{\"error\": {{\"code\": {code}, \"message\": \"{message}\", \"status\": \"{kind}\"}}}}"
        ),
    )
}

async fn values(
    State(state): State<Arc<ServerState>>,
    Path((_id, range)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("key").map(String::as_str) != Some(credentials::SHEETS_API_KEY) {
        return google_error(
            StatusCode::FORBIDDEN,
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        );
    }
    let fault = state.admit("sheets/values").await;
    match fault {
        Fault::Throttle | Fault::QuotaSpent => {
            return google_error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'",
            );
        }
        Fault::ServerError => {
            return google_error(
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            );
        }
        _ => {}
    }
    let tab = range
        .split('!')
        .next()
        .unwrap_or_default()
        .trim_matches('\'');
    let Some(kind) = SheetRange::ALL.into_iter().find(|r| r.name() == tab) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {range}"),
        );
    };
    match render_values(&state.lake, kind, &range).await {
        Ok(mut body) => {
            if matches!(fault, Fault::Truncate | Fault::Malform) {
                body.truncate(body.len() / 2);
            }
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(e) => world_error(e),
    }
}
