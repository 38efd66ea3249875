//! The AppsFlyer Pull API connector. The API has no paging: a body holding exactly
//! `maximum_rows` rows was cut off. So a report day is pulled in time windows planned from the
//! volume of earlier days (rarely cut), and a cut window is split in two and pulled again,
//! but only while the report's daily call quota (24 per app and report is common) can pay
//! for both halves; otherwise the day is deferred rather than spending calls on a day that
//! could not be finished.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::columns::additional_fields;
use super::parse::TIME_FORMAT;
use super::{Report, count_rows, parse_report};
use crate::config::{AppsFlyerSource, Secret, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
    partition_label,
};
use crate::ingest::http::{Verdict, default_verdict, snippet};
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// Headroom over the largest recent day when planning windows: volumes grow.
const PLAN_HEADROOM: f64 = 1.25;
/// Days of history the window plan looks at.
const PLAN_LOOKBACK: usize = 7;
/// A window this short that still hits `maximum_rows` cannot be split usefully.
const SHORTEST_WINDOW: Duration = Duration::seconds(60);

/// Pull API raw-data reports of the configured apps.
#[derive(Debug)]
pub struct AppsFlyerConnector {
    base: String,
    token: Secret,
    apps: Vec<String>,
    zone: Tz,
    maximum_rows: u32,
    reports: Vec<Report>,
    streams: Vec<StreamSpec>,
}

impl AppsFlyerConnector {
    /// `base_url` is the API root: `https://hq1.appsflyer.com`, or the local server's
    /// `/appsflyer`.
    pub fn new(
        settings: &AppsFlyerSource,
        base_url: &str,
        token: Secret,
    ) -> Result<Self, SchemaError> {
        let streams = settings
            .reports
            .iter()
            .map(|r| StreamSpec::new(r.stream(), r.table(), Cursor::ReportDay))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AppsFlyerConnector {
            base: base_url.trim_end_matches('/').to_string(),
            token,
            apps: settings.app_ids.clone(),
            zone: settings.timezone,
            maximum_rows: settings.maximum_rows.get(),
            reports: settings.reports.clone(),
            streams,
        })
    }

    fn report_of(&self, stream: &StreamSpec) -> Option<Report> {
        self.reports
            .iter()
            .copied()
            .find(|r| r.stream() == stream.name)
    }

    /// Windows per app for a day: enough that the largest recent day, with headroom, stays
    /// under `maximum_rows` in each.
    fn planned_windows(&self, day: NaiveDate, history: &StreamState) -> u32 {
        let recent_max = history.busiest_recent(day, PLAN_LOOKBACK);
        let need = (recent_max as f64 * PLAN_HEADROOM / f64::from(self.maximum_rows)).ceil();
        (need as u32).clamp(1, 24)
    }

    /// The report day `[start, end)` in the configured zone, as UTC instants.
    fn day_bounds(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let at = |d: NaiveDate| {
            self.zone
                .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        Some((at(day)?, at(day.succ_opt()?)?))
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.zone).format(TIME_FORMAT).to_string()
    }

    /// Pulls one app's day of one report, window by window, splitting cut windows.
    async fn pull_app(
        &self,
        ctx: &PullContext<'_>,
        report: Report,
        app: &str,
        day: NaiveDate,
        windows: u32,
    ) -> Result<Pulled, PullError> {
        let stream = report.stream();
        let partition = partition_label(day);
        let scope = scope(app, report);
        let (start, end) = self.day_bounds(day).ok_or_else(|| PullError::Source {
            stream: stream.clone(),
            partition: partition.clone(),
            message: format!("day {day} has no midnight in {}", self.zone),
        })?;
        let step = (end - start) / windows as i32;
        let mut queue: VecDeque<(DateTime<Utc>, DateTime<Utc>)> = (0..windows)
            .map(|i| {
                let a = start + step * i as i32;
                let b = if i + 1 == windows { end } else { a + step };
                (a, b)
            })
            .collect();
        let url = format!(
            "{}/api/raw-data/export/app/{app}/{}/v5",
            self.base,
            report.path()
        );
        let extra = additional_fields(report).join(",");
        let mut pulled = Pulled::default();
        while let Some((a, b)) = queue.pop_front() {
            let label = format!("{partition} {app} {}..{}", self.local(a), self.local(b));
            let mut query = vec![
                ("from", self.local(a)),
                ("to", self.local(b)),
                ("timezone", self.zone.name().to_string()),
                ("maximum_rows", self.maximum_rows.to_string()),
            ];
            if !extra.is_empty() {
                query.push(("additional_fields", extra.clone()));
            }
            let max = self.maximum_rows as usize;
            let (window, calls, retries) = fetch_parsed(
                ctx,
                &scope,
                || {
                    ctx.client
                        .get(&url)
                        .query(&query)
                        .bearer_auth(self.token.expose())
                },
                verdict,
                |body| {
                    if count_rows(body) >= max {
                        return Ok(None);
                    }
                    parse_report(body, report, app, self.zone, ctx.pulled_at, &label).map(Some)
                },
            )
            .await?;
            pulled.calls += calls;
            pulled.retries += retries;
            if let Some(frame) = window {
                pulled.frames.push(frame);
                continue;
            }
            // Cut off at maximum_rows: split, if the quota can pay for both halves.
            if b - a < SHORTEST_WINDOW * 2 {
                return Err(PullError::Source {
                    stream,
                    partition: label,
                    message: format!(
                        "a window under two minutes holds {max} rows or more; raise maximum_rows"
                    ),
                });
            }
            let left = ctx.budget.remaining(&scope, Utc::now()).await;
            let needed = queue.len() as u32 + 2;
            if let Some(left) = left.filter(|l| *l < needed) {
                return Err(PullError::deferred(
                    &stream,
                    day,
                    format!(
                        "{app}: window {}..{} was cut at maximum_rows; finishing the day needs {needed} more calls but {scope} has {left} left today",
                        self.local(a),
                        self.local(b),
                    ),
                ));
            }
            tracing::info!(stream = %stream, %partition, app, from = %self.local(a), to = %self.local(b), "Window cut at maximum_rows; splitting it.");
            let mid = a + (b - a) / 2;
            queue.push_front((mid, b));
            queue.push_front((a, mid));
        }
        Ok(pulled)
    }
}

/// The budget scope of a report's daily quota: per app and report, as AppsFlyer counts.
fn scope(app: &str, report: Report) -> String {
    format!("appsflyer/{app}/{}", report.path())
}

/// AppsFlyer answers a spent daily quota with HTTP 400 and a text body ("Limit reached ..."):
/// a deferral, not a failure, and never retried the same day.
pub fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status == StatusCode::BAD_REQUEST
        && String::from_utf8_lossy(body)
            .to_ascii_lowercase()
            .contains("limit reached")
    {
        return Verdict::QuotaSpent(snippet(body));
    }
    default_verdict(status, headers, body)
}

#[async_trait]
impl Connector for AppsFlyerConnector {
    fn source(&self) -> SourceKind {
        SourceKind::AppsFlyer
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn plan(
        &self,
        stream: &StreamSpec,
        day: NaiveDate,
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let Some(report) = self.report_of(stream) else {
            return Vec::new();
        };
        let windows = self.planned_windows(day, history);
        self.apps
            .iter()
            .map(|app| PlannedCalls {
                scope: scope(app, report),
                calls: windows,
            })
            .collect()
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let report = self.report_of(stream).ok_or_else(|| PullError::Source {
            stream: stream.name.clone(),
            partition: partition_label(day),
            message: "not a report this connector pulls".into(),
        })?;
        let windows = self.planned_windows(day, ctx.history);
        let mut pulled = Pulled::default();
        for app in &self.apps {
            pulled.absorb(self.pull_app(ctx, report, app, day, windows).await?);
        }
        Ok(pulled)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spent_quota_is_a_deferral_and_other_400s_are_fatal() {
        let h = HeaderMap::new();
        let limit =
            b"Limit reached for installs_report: you have exceeded the daily API calls quota";
        assert!(matches!(
            verdict(StatusCode::BAD_REQUEST, &h, limit),
            Verdict::QuotaSpent(_)
        ));
        assert!(matches!(
            verdict(StatusCode::BAD_REQUEST, &h, b"Invalid timezone"),
            Verdict::Fatal(_)
        ));
        assert!(matches!(
            verdict(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Verdict::Retry { .. }
        ));
    }
}
