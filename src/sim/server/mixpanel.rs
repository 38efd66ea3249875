//! Mixpanel on the local server: `GET /api/2.0/export` (JSON Lines, gzip on request) and
//! `POST /api/2.0/engage` (pages by `session_id` + `page`), behind HTTP Basic auth with the
//! service account, with Mixpanel's own throttle answer (HTTP 429 and a JSON error).

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::NaiveDate;
use polars::prelude::DataFrame;
use serde::Deserialize;

use super::{Fault, ServerState, answer, credentials, world_error};
use crate::ingest::mixpanel::ExportOptions;
use crate::sim::serve::mixpanel::{
    render_engage_page, render_export, world_events, world_profiles,
};

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/2.0/export", get(export))
        .route("/api/2.0/engage", post(engage))
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    from_date: NaiveDate,
    to_date: NaiveDate,
    #[serde(default)]
    time_in_ms: bool,
}

fn authorised(headers: &HeaderMap) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials::MIXPANEL_USER,
        credentials::MIXPANEL_SECRET
    ));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

fn json_error(status: StatusCode, message: &str) -> Response {
    answer(
        status,
        "application/json",
        format!("{{\"error\": \"{message}\", \"status\": \"error\"}}"),
    )
}

/// Mixpanel's answers to a fault that happens before any body is produced.
fn early_fault(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Throttle | Fault::QuotaSpent => Some(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Query rate limit exceeded",
        )),
        Fault::ServerError => Some(answer(
            StatusCode::BAD_GATEWAY,
            "text/html",
            "<html>502 Bad Gateway</html>",
        )),
        _ => None,
    }
}

async fn export(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> Response {
    if !authorised(&headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "Invalid service account credentials",
        );
    }
    let fault = state.admit("mixpanel/export").await;
    if let Some(r) = early_fault(fault) {
        return r;
    }
    if q.to_date < q.from_date {
        return json_error(
            StatusCode::BAD_REQUEST,
            "to_date must not be before from_date",
        );
    }
    let opts = ExportOptions {
        time_in_ms: q.time_in_ms,
        project_timezone: state.options.mixpanel_project_timezone,
    };
    let body = async {
        let installs = state.world_installs().await.map_err(|e| e.to_string())?;
        let lf = world_events(&state.lake, installs, q.from_date, q.to_date)
            .await
            .map_err(|e| e.to_string())?;
        // A day is a hundred thousand lines or more: build it off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let events = lf.collect().map_err(|e| e.to_string())?;
            render_export(events, &opts).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
    .await;
    let mut body = match body {
        Ok(b) => b,
        Err(e) => return world_error(e),
    };
    match fault {
        // Mixpanel's own marker when it stops streaming.
        Fault::Truncate => {
            body.truncate(body.len() / 2);
            body.extend_from_slice(b"\nterminated early\n");
        }
        Fault::Malform => {
            let cut = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
            body.splice(
                cut..cut,
                b"\n{\"event\": \"app_open\", \"properties\": {\"time\": "
                    .iter()
                    .copied(),
            );
        }
        _ => {}
    }
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(&body).is_ok()
            && let Ok(zipped) = enc.finish()
        {
            return (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/x-ndjson"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                zipped,
            )
                .into_response();
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct EngageForm {
    #[serde(default)]
    page: u64,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    page_size: Option<usize>,
}

/// The one session the local server hands out; a later page must name it.
const SESSION: &str = "1700000000-sim-engage";

/// The session's profiles: page 0 opens a session on the world's profiles as they are now;
/// later pages read that snapshot, as Mixpanel's do.
async fn session_profiles(state: &ServerState, page: u64) -> Result<Arc<DataFrame>, String> {
    if page > 0 {
        let open = state
            .engage_session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(profiles) = open {
            return Ok(profiles);
        }
    }
    let profiles = world_profiles(&state.lake)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .map_err(|e| e.to_string())?;
    let profiles = Arc::new(profiles);
    *state
        .engage_session
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(profiles.clone());
    Ok(profiles)
}

async fn engage(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    Form(form): Form<EngageForm>,
) -> Response {
    if !authorised(&headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "Invalid service account credentials",
        );
    }
    let fault = state.admit("mixpanel/engage").await;
    if let Some(r) = early_fault(fault) {
        return r;
    }
    if form.page > 0 && form.session_id.as_deref() != Some(SESSION) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "page > 0 requires the session_id of page 0",
        );
    }
    let page_size = form.page_size.unwrap_or(1000).clamp(1, 1000);
    let body = async {
        let profiles = session_profiles(&state, form.page).await?;
        render_engage_page(&profiles, form.page, page_size, SESSION).map_err(|e| e.to_string())
    }
    .await;
    match body {
        Ok(mut b) => {
            if matches!(fault, Fault::Truncate | Fault::Malform) {
                b.truncate(b.len() / 2);
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                b,
            )
                .into_response()
        }
        Err(e) => world_error(e),
    }
}
