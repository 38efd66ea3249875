//! The AppsFlyer Pull API connector. The API has no paging: a body holding exactly
//! `maximum_rows` rows was cut off. So a report day is pulled in time windows planned from the
//! volume of earlier days (rarely cut), and a cut window is split in two and pulled again,
//! but only while the report's daily call quota (24 per app and report is common) can pay
//! for both halves; otherwise the day is deferred rather than spending calls on a day that
//! could not be finished.
//!
//! A call costs one unit of that quota whatever its date range, so a backfill pulls many
//! days per call (as many as the volume of the days before lets fit in a body of
//! [`BACKFILL_ROWS_PER_CALL`] rows, at most `backfill_days_per_call`) and splits the rows into
//! their days by their time. A 90-day backfill of a report fits in one day's quota.

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
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, days_label,
    fetch_parsed,
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
/// Rows a multi-day backfill call is planned to hold at most: bodies of about 100 MB. Larger
/// ones would save few calls and hold more memory per pull in flight.
const BACKFILL_ROWS_PER_CALL: u32 = 200_000;

/// Pull API raw-data reports of the configured apps.
#[derive(Debug)]
pub struct AppsFlyerConnector {
    base: String,
    token: Secret,
    apps: Vec<String>,
    zone: Tz,
    maximum_rows: u32,
    backfill_days_per_call: u32,
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
            backfill_days_per_call: settings.backfill_days_per_call.get(),
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

    /// Windows per app for `days` consecutive days: enough that the largest nearby landed day
    /// (as [`Connector::days_per_pull`] judges the span by), with headroom, stays under
    /// `maximum_rows` in each.
    fn planned_windows(&self, day: NaiveDate, days: usize, history: &StreamState) -> u32 {
        let recent_max = history.busiest_near(day, PLAN_LOOKBACK).unwrap_or(0);
        let need =
            (recent_max as f64 * days as f64 * PLAN_HEADROOM / f64::from(self.maximum_rows)).ceil();
        (need as u32).clamp(1, 24 * days.max(1) as u32)
    }

    /// `[start of the first day, end of the last)` in the configured zone, as UTC instants.
    fn days_bounds(&self, days: &[NaiveDate]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((
            self.day_start(*days.first()?)?,
            self.day_start(days.last()?.succ_opt()?)?,
        ))
    }

    /// Midnight of `day` in the configured zone, as a UTC instant.
    fn day_start(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        self.zone
            .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.zone).format(TIME_FORMAT).to_string()
    }

    /// Pulls one app's consecutive `days` of one report, window by window, splitting cut
    /// windows.
    async fn pull_app(
        &self,
        ctx: &PullContext<'_>,
        report: Report,
        app: &str,
        days: &[NaiveDate],
        windows: u32,
    ) -> Result<Pulled, PullError> {
        let stream = report.stream();
        let partition = days_label(days);
        let first = days.first().copied().unwrap_or_default();
        let scope = scope(app, report);
        let (start, end) = self.days_bounds(days).ok_or_else(|| PullError::Source {
            stream: stream.clone(),
            partition: partition.clone(),
            message: format!("{partition} has no midnight in {}", self.zone),
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
                    first,
                    format!(
                        "{app}: window {}..{} was cut at maximum_rows; finishing {partition} needs {needed} more calls but {scope} has {left} left today",
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

    /// The report's rows for `days`, every app, before they are split into days.
    async fn pull_range(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        days: &[NaiveDate],
    ) -> Result<(Report, Pulled), PullError> {
        let report = self.report_of(stream).ok_or_else(|| PullError::Source {
            stream: stream.name.clone(),
            partition: days_label(days),
            message: "not a report this connector pulls".into(),
        })?;
        let first = days.first().copied().unwrap_or_default();
        let windows = self.planned_windows(first, days.len(), ctx.history);
        let mut pulled = Pulled::default();
        for app in &self.apps {
            pulled.absorb(self.pull_app(ctx, report, app, days, windows).await?);
        }
        Ok((report, pulled))
    }

    /// Splits a multi-day pull into its days by each row's install or event time in the
    /// configured zone. A row outside the days (a source answering past the window asked
    /// for) goes to the nearest one, as a one-day pull would land it in its day.
    fn split_by_day(
        &self,
        report: Report,
        days: &[NaiveDate],
        pulled: Pulled,
    ) -> Result<Vec<Pulled>, PullError> {
        let label = days_label(days);
        let err = |message: String| PullError::Source {
            stream: report.stream(),
            partition: label.clone(),
            message,
        };
        // Where each day after the first begins, in epoch milliseconds.
        let starts = days
            .iter()
            .skip(1)
            .map(|d| {
                self.day_start(*d)
                    .map(|t| t.timestamp_millis())
                    .ok_or_else(|| err(format!("{d} has no midnight in {}", self.zone)))
            })
            .collect::<Result<Vec<i64>, _>>()?;
        let mut out: Vec<Pulled> = days.iter().map(|_| Pulled::default()).collect();
        if let Some(head) = out.first_mut() {
            head.calls = pulled.calls;
            head.retries = pulled.retries;
        }
        let time = report.time_column();
        for frame in pulled.frames {
            let millis = frame
                .column(time)
                .and_then(|c| c.cast(&polars::prelude::DataType::Int64))
                .map_err(|e| err(format!("column {time}: {e}")))?;
            let millis = millis
                .i64()
                .map_err(|e| err(format!("column {time}: {e}")))?;
            let day_of: Vec<usize> = millis
                .iter()
                .map(|t| t.map_or(0, |t| starts.partition_point(|s| *s <= t)))
                .collect();
            for (i, into) in out.iter_mut().enumerate() {
                let part = day_rows(&frame, &day_of, i)
                    .map_err(|e| err(format!("splitting rows by {time}: {e}")))?;
                into.frames.push(part);
            }
        }
        Ok(out)
    }
}

/// The rows of `frame` whose day index is `day`: a slice when the rows come in time order,
/// as the API sends them, else a filter.
fn day_rows(
    frame: &polars::prelude::DataFrame,
    day_of: &[usize],
    day: usize,
) -> polars::prelude::PolarsResult<polars::prelude::DataFrame> {
    if day_of.is_sorted() {
        let from = day_of.partition_point(|d| *d < day);
        let to = day_of.partition_point(|d| *d <= day);
        return Ok(frame.slice(from as i64, to - from));
    }
    let mask: polars::prelude::BooleanChunked = day_of.iter().map(|d| *d == day).collect();
    frame.filter(&mask)
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
        self.plan_days(stream, &[day], history)
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        Ok(self.pull_range(ctx, stream, &[day]).await?.1)
    }

    fn days_per_pull(&self, _stream: &StreamSpec, day: NaiveDate, history: &StreamState) -> u32 {
        // Nothing landed yet: the volume is unknown, so one day, which then tells.
        let Some(busiest) = history.busiest_near(day, PLAN_LOOKBACK) else {
            return 1;
        };
        let recent_max = busiest as f64 * PLAN_HEADROOM;
        let per_call = f64::from(self.maximum_rows.min(BACKFILL_ROWS_PER_CALL));
        let days = if recent_max > 0.0 {
            (per_call / recent_max).floor()
        } else {
            f64::INFINITY
        };
        days.clamp(1.0, f64::from(self.backfill_days_per_call)) as u32
    }

    fn plan_days(
        &self,
        stream: &StreamSpec,
        days: &[NaiveDate],
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let (Some(report), Some(first)) = (self.report_of(stream), days.first()) else {
            return Vec::new();
        };
        let windows = self.planned_windows(*first, days.len(), history);
        self.apps
            .iter()
            .map(|app| PlannedCalls {
                scope: scope(app, report),
                calls: windows,
            })
            .collect()
    }

    async fn pull_days(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        days: &[NaiveDate],
    ) -> Result<Vec<Pulled>, PullError> {
        let (report, pulled) = self.pull_range(ctx, stream, days).await?;
        if days.len() == 1 {
            return Ok(vec![pulled]);
        }
        self.split_by_day(report, days, pulled)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_days_rows_are_sliced_in_time_order_and_filtered_out_of_it() {
        use polars::prelude::*;
        let frame = df!("n" => [0i64, 1, 2, 3, 4]).unwrap();
        let ns = |df: DataFrame| -> Vec<i64> {
            df.column("n")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let sorted = [0, 0, 1, 3, 3];
        assert_eq!(ns(day_rows(&frame, &sorted, 0).unwrap()), [0, 1]);
        assert_eq!(ns(day_rows(&frame, &sorted, 1).unwrap()), [2]);
        assert!(ns(day_rows(&frame, &sorted, 2).unwrap()).is_empty());
        assert_eq!(ns(day_rows(&frame, &sorted, 3).unwrap()), [3, 4]);
        let shuffled = [1, 0, 1, 2, 0];
        assert_eq!(ns(day_rows(&frame, &shuffled, 0).unwrap()), [1, 4]);
        assert_eq!(ns(day_rows(&frame, &shuffled, 1).unwrap()), [0, 2]);
        assert_eq!(ns(day_rows(&frame, &shuffled, 2).unwrap()), [3]);
    }

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
