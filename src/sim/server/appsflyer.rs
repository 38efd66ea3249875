//! AppsFlyer on the local server: the Pull API raw-data export
//! `GET /api/raw-data/export/app/{app_id}/{report}/v5?from=&to=&timezone=&maximum_rows=`,
//! behind a bearer token. No paging: a window with more rows than `maximum_rows` is cut to
//! that many rows. A spent daily quota is HTTP 400 with a text body, as AppsFlyer answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::{Fault, ServerState, answer, credentials, world_error};
use crate::ingest::appsflyer::Report;
use crate::sim::serve::appsflyer::{render_csv, world_rows};

/// AppsFlyer's default and largest `maximum_rows`.
const DEFAULT_MAX_ROWS: usize = 200_000;
const LARGEST_MAX_ROWS: usize = 1_000_000;

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/api/raw-data/export/app/{app_id}/{report}/v5", get(export))
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    from: String,
    to: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    maximum_rows: Option<usize>,
    /// Comma-separated names of fields sent only on request.
    #[serde(default)]
    additional_fields: Option<String>,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    answer(status, "text/plain; charset=utf-8", body)
}

/// `from`/`to` are `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` in the request's zone. A `to` date
/// includes its whole day; a `to` time is excluded (the window ends just before it), as the
/// Pull API documents. Returns `[start, end)`.
fn window(from: &str, to: &str, zone: chrono_tz::Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let parse = |s: &str, end: bool| -> Option<DateTime<Utc>> {
        let local = match NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            Ok(t) => t,
            Err(_) => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
                (d + chrono::Duration::days(i64::from(end))).and_hms_opt(0, 0, 0)?
            }
        };
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    Some((parse(from, false)?, parse(to, true)?))
}

async fn export(
    State(state): State<Arc<ServerState>>,
    Path((app_id, report)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> Response {
    let bearer = format!("Bearer {}", credentials::APPSFLYER_TOKEN);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(bearer.as_str())
    {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized: invalid API token");
    }
    let Some(report) = Report::ALL.into_iter().find(|r| r.path() == report) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("Unknown report type {report}"),
        );
    };
    match state
        .admit(&format!("appsflyer/{app_id}/{}", report.path()))
        .await
    {
        Fault::QuotaSpent => text(
            StatusCode::BAD_REQUEST,
            format!(
                "Limit reached for {}: you have exceeded the daily API calls quota for this report",
                report.path()
            ),
        ),
        Fault::Throttle => text(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        Fault::ServerError => text(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        fault => {
            let zone: chrono_tz::Tz = match q.timezone.as_deref().unwrap_or("UTC").parse() {
                Ok(z) => z,
                Err(_) => return text(StatusCode::BAD_REQUEST, "Invalid timezone"),
            };
            let Some((start, end)) = window(&q.from, &q.to, zone) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Invalid from/to: use yyyy-mm-dd or yyyy-mm-dd hh:mm:ss",
                );
            };
            let max_rows = q
                .maximum_rows
                .unwrap_or(DEFAULT_MAX_ROWS)
                .min(LARGEST_MAX_ROWS);
            let body = async {
                let installs = state.world_installs().await.map_err(|e| e.to_string())?;
                let rows = world_rows(&state.lake, installs, report, &app_id, start, end)
                    .await
                    .map_err(|e| e.to_string())?;
                let additional = q.additional_fields.clone().unwrap_or_default();
                // Off the runtime's threads, which the other sources' calls need meanwhile.
                tokio::task::spawn_blocking(move || {
                    let rows = rows
                        .limit(max_rows as u32)
                        .collect()
                        .map_err(|e| e.to_string())?;
                    let requested: Vec<&str> = additional.split(',').map(str::trim).collect();
                    render_csv(rows, report, zone, &requested).map_err(|e| e.to_string())
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
                Fault::Truncate => body.truncate(body.len() * 2 / 3),
                // An unterminated quote: no CSV reader can take it.
                Fault::Malform => body.push_str("\"broken,row\n"),
                _ => {}
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                body,
            )
                .into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_inclusive_in_the_requested_zone() {
        let seoul: chrono_tz::Tz = "Asia/Seoul".parse().unwrap();
        let (s, e) = window("2026-01-02", "2026-01-02", seoul).unwrap();
        assert_eq!(s.to_rfc3339(), "2026-01-01T15:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-01-02T15:00:00+00:00");
        let (s, e) = window("2026-01-02 00:00:00", "2026-01-02 06:00:00", chrono_tz::UTC).unwrap();
        assert_eq!((e - s).num_seconds(), 6 * 3600);
        assert!(window("yesterday", "2026-01-02", seoul).is_none());
    }
}
