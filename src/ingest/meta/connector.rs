//! The Meta connector: one stream per configured level, every configured ad account's day
//! landing in one partition. A single report day is one sync GET per account, paged by
//! cursor; a range longer than `async_threshold_days` goes through async report runs, which
//! are polled and restarted when stuck or failed. Every call first honours what Meta's usage
//! headers last said.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use polars::prelude::*;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::error::Category;

use super::parse::{PageSpec, parse_insights_page};
use super::throttle::{Usage, pause_for, verdict};
use super::wire::{parse_report_run, parse_run_id};
use super::{key_field, request_fields, stream_name, table};
use crate::config::{AttributionWindow, MetaLevel, MetaSource, Secret, SourceKind};
use crate::ingest::ParseError;
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
};
use crate::ingest::http::Verdict;
use crate::ingest::sheets::cells::epoch_days;
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// The budget scope of every Meta call.
const SCOPE: &str = "meta";

/// How the connector paces itself and drives report runs. The defaults suit the real API;
/// tests shrink the times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetaTuning {
    /// Usage (percent, any header) from which the connector pauses before each call;
    /// `None` never slows down (only Meta's blocks are waited out).
    pub slow_down_above_pct: Option<f64>,
    /// The pause at that usage; it grows linearly to four times this at 100%.
    pub slow_down: Duration,
    /// Meta's minute: `estimated_time_to_regain_access` counts in these.
    pub minute: Duration,
    /// The longest block a pull waits out; a longer one defers the pull to the next run.
    pub max_block_wait: Duration,
    /// Rows per page (`limit`).
    pub page_limit: u32,
    /// Pause between polls of a report run.
    pub poll_interval: Duration,
    /// Polls without progress after which a run counts as stuck and is started again.
    pub stuck_after_polls: u32,
    /// Runs started again (stuck, failed or skipped) before the pull gives up.
    pub max_run_restarts: u32,
}

impl Default for MetaTuning {
    fn default() -> Self {
        MetaTuning {
            slow_down_above_pct: Some(75.0),
            slow_down: Duration::from_secs(10),
            minute: Duration::from_secs(60),
            max_block_wait: Duration::from_secs(15 * 60),
            page_limit: 500,
            poll_interval: Duration::from_secs(5),
            // Five minutes without progress at the default interval.
            stuck_after_polls: 60,
            max_run_restarts: 2,
        }
    }
}

/// The days of a range pull, each one partition to land, and what the pull cost.
#[derive(Debug, Default)]
pub struct RangePull {
    /// Every day of the range, empty frames included (a day without delivery is still a
    /// complete partition).
    pub days: BTreeMap<NaiveDate, DataFrame>,
    pub calls: u32,
    pub retries: u32,
    /// Report runs started (0 for sync pulls), restarts included.
    pub runs: u32,
}

/// Pulls Meta insights.
pub struct MetaConnector {
    /// `<base_url>/<api_version>`.
    root: String,
    accounts: Vec<String>,
    levels: Vec<MetaLevel>,
    windows: Vec<AttributionWindow>,
    async_threshold_days: u32,
    token: Secret,
    streams: Vec<StreamSpec>,
    tuning: MetaTuning,
    /// What the last answer's usage headers said.
    usage: Mutex<Usage>,
    paused_ms: AtomicU64,
    pauses: AtomicU32,
}

impl std::fmt::Debug for MetaConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaConnector")
            .field("root", &self.root)
            .field("accounts", &self.accounts)
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

impl MetaConnector {
    /// A connector for `settings`, calling `base_url` (e.g. `https://graph.facebook.com`)
    /// with `access_token`.
    pub fn new(
        settings: &MetaSource,
        base_url: &str,
        access_token: Secret,
    ) -> Result<Self, SchemaError> {
        let streams = settings
            .levels
            .iter()
            .map(|l| StreamSpec::new(stream_name(*l), table(*l), Cursor::ReportDay))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MetaConnector {
            root: format!(
                "{}/{}",
                base_url.trim_end_matches('/'),
                settings.api_version
            ),
            accounts: settings.ad_account_ids.clone(),
            levels: settings.levels.clone(),
            windows: settings.attribution_windows.clone(),
            async_threshold_days: settings.async_threshold_days.get(),
            token: access_token,
            streams,
            tuning: MetaTuning::default(),
            usage: Mutex::new(Usage::default()),
            paused_ms: AtomicU64::new(0),
            pauses: AtomicU32::new(0),
        })
    }

    /// The same connector paced and polling as `tuning` says.
    pub fn with_tuning(mut self, tuning: MetaTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// Pauses taken because usage was high or access was blocked, and their total length.
    pub fn pauses(&self) -> (u32, Duration) {
        (
            self.pauses.load(Ordering::Relaxed),
            Duration::from_millis(self.paused_ms.load(Ordering::Relaxed)),
        )
    }

    fn level_of(&self, stream: &StreamSpec) -> Result<MetaLevel, PullError> {
        self.levels
            .iter()
            .copied()
            .find(|l| stream_name(*l) == stream.name)
            .ok_or_else(|| PullError::Source {
                stream: stream.name.clone(),
                partition: String::new(),
                message: "not a stream of this Meta connector".into(),
            })
    }

    /// Reads an answer: remembers its usage headers for pacing, then judges it.
    fn judge(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if let Some(u) = Usage::from_headers(headers) {
            *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = u;
        }
        // Meta never echoes the token, but nothing that could hold it reaches a message.
        let token = self.token.expose();
        let scrub = |s: String| {
            if token.is_empty() {
                s
            } else {
                s.replace(token, "***")
            }
        };
        match verdict(status, headers, body, &self.tuning) {
            Verdict::Retry { after, reason } => Verdict::Retry {
                after,
                reason: scrub(reason),
            },
            Verdict::QuotaSpent(m) => Verdict::QuotaSpent(scrub(m)),
            Verdict::Fatal(m) => Verdict::Fatal(scrub(m)),
            Verdict::Done => Verdict::Done,
        }
    }

    /// Waits as long as the last usage headers ask before the next call.
    async fn pace(&self, stream: &str, partition: &str) -> Result<(), PullError> {
        let usage = *self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let Some(wait) = pause_for(&usage, &self.tuning) else {
            return Ok(());
        };
        if wait > self.tuning.max_block_wait {
            return Err(PullError::Deferred {
                stream: stream.to_string(),
                partition: partition.to_string(),
                reason: format!(
                    "Meta blocks calls for about {} more minutes",
                    usage.regain_minutes
                ),
            });
        }
        tracing::info!(
            stream,
            partition,
            usage_pct = usage.max_pct,
            regain_minutes = usage.regain_minutes,
            wait_ms = wait.as_millis() as u64,
            "Meta usage is high; pausing before the next call."
        );
        tokio::time::sleep(wait).await;
        self.pauses.fetch_add(1, Ordering::Relaxed);
        self.paused_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        // The figures are stale now; the next answer brings fresh ones.
        *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = Usage::default();
        Ok(())
    }

    /// The insights parameters of a level and range (without paging and token).
    fn params(
        &self,
        level: MetaLevel,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Vec<(&'static str, String)> {
        let windows: Vec<&str> = self.windows.iter().map(|w| w.name()).collect();
        vec![
            ("level", level.name().to_string()),
            ("fields", request_fields(level)),
            (
                "time_range",
                serde_json::json!({"since": since.to_string(), "until": until.to_string()})
                    .to_string(),
            ),
            ("time_increment", "1".to_string()),
            (
                "action_attribution_windows",
                serde_json::json!(windows).to_string(),
            ),
        ]
    }

    fn token_param(&self) -> (&'static str, String) {
        ("access_token", self.token.expose().to_string())
    }

    /// Reads every page of `url` (sync insights or a run's results) with `params`, following
    /// `paging.cursors.after` until `paging.next` is absent.
    #[allow(clippy::too_many_arguments)]
    async fn read_pages(
        &self,
        ctx: &PullContext<'_>,
        url: &str,
        params: &[(&'static str, String)],
        spec: &PageSpec<'_>,
        stream: &str,
        partition: &str,
        cost: &mut (u32, u32),
    ) -> Result<Vec<DataFrame>, PullError> {
        let mut frames = Vec::new();
        let mut after: Option<String> = None;
        let mut cursors = HashSet::new();
        loop {
            self.pace(stream, partition).await?;
            let make = || {
                let mut q: Vec<(&str, String)> = params.to_vec();
                q.push(("limit", self.tuning.page_limit.to_string()));
                if let Some(a) = &after {
                    q.push(("after", a.clone()));
                }
                q.push(self.token_param());
                ctx.client.get(url).query(&q)
            };
            let (page, calls, retries) = fetch_parsed(
                ctx,
                SCOPE,
                make,
                |s, h, b| self.judge(s, h, b),
                |b| parse_insights_page(b, spec, ctx.pulled_at, partition),
            )
            .await?;
            cost.0 += calls;
            cost.1 += retries;
            frames.push(page.frame);
            if !page.has_next {
                return Ok(frames);
            }
            let next = page.after.unwrap_or_default();
            if !cursors.insert(next.clone()) {
                return Err(PullError::Source {
                    stream: stream.to_string(),
                    partition: partition.to_string(),
                    message: format!("paging went in a circle: cursor {next:?} came back"),
                });
            }
            after = Some(next);
        }
    }

    /// One account's range through an async report run: create, poll until complete
    /// (starting again when the run fails, is skipped or makes no progress), read its pages.
    #[allow(clippy::too_many_arguments)]
    async fn read_async(
        &self,
        ctx: &PullContext<'_>,
        account: &str,
        spec: &PageSpec<'_>,
        stream: &str,
        partition: &str,
        cost: &mut (u32, u32),
        runs: &mut u32,
    ) -> Result<Vec<DataFrame>, PullError> {
        let source_error = |message: String| PullError::Source {
            stream: stream.to_string(),
            partition: partition.to_string(),
            message,
        };
        let bad_body = |m: String, body: &[u8]| {
            let e = ParseError::new(stream, partition, m);
            if json_cut(body) { e.truncated() } else { e }
        };
        let create_url = format!("{}/{account}/insights", self.root);
        let mut restarts = 0;
        'run: loop {
            self.pace(stream, partition).await?;
            let mut form = self.params(spec.level, spec.since, spec.until);
            form.push(self.token_param());
            let (run_id, calls, retries) = fetch_parsed(
                ctx,
                SCOPE,
                || ctx.client.post(&create_url).form(&form),
                |s, h, b| self.judge(s, h, b),
                |b| parse_run_id(b).map_err(|m| bad_body(m, b)),
            )
            .await?;
            cost.0 += calls;
            cost.1 += retries;
            *runs += 1;
            tracing::info!(stream, partition, account, run_id = %run_id, "Started a Meta report run.");

            let status_url = format!("{}/{run_id}", self.root);
            let mut best = -1.0_f64;
            let mut idle = 0;
            loop {
                tokio::time::sleep(self.tuning.poll_interval).await;
                self.pace(stream, partition).await?;
                let (run, calls, retries) = fetch_parsed(
                    ctx,
                    SCOPE,
                    || ctx.client.get(&status_url).query(&[self.token_param()]),
                    |s, h, b| self.judge(s, h, b),
                    |b| parse_report_run(b).map_err(|m| bad_body(m, b)),
                )
                .await?;
                cost.0 += calls;
                cost.1 += retries;
                if run.completed() {
                    break;
                }
                let why = if run.dead() {
                    Some(format!("ended as {:?}", run.async_status))
                } else if run.async_percent_completion > best {
                    best = run.async_percent_completion;
                    idle = 0;
                    None
                } else {
                    idle += 1;
                    (idle >= self.tuning.stuck_after_polls).then(|| {
                        format!(
                            "made no progress in {idle} polls ({:?} at {}%)",
                            run.async_status, run.async_percent_completion
                        )
                    })
                };
                if let Some(why) = why {
                    restarts += 1;
                    if restarts > self.tuning.max_run_restarts {
                        return Err(source_error(format!(
                            "report run {run_id} for {account} {why}; gave up after {} restarts",
                            self.tuning.max_run_restarts
                        )));
                    }
                    tracing::warn!(stream, partition, account, run_id = %run_id, reason = %why, "Meta report run is not finishing; starting it again.");
                    continue 'run;
                }
            }
            let results = format!("{}/{run_id}/insights", self.root);
            return self
                .read_pages(ctx, &results, &[], spec, stream, partition, cost)
                .await;
        }
    }

    /// Pulls `from..=to` (account days) of a stream: sync pages for short ranges, async
    /// report runs for ranges longer than `async_threshold_days`. Returns one frame per day.
    pub async fn pull_range(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RangePull, PullError> {
        let level = self.level_of(stream)?;
        let partition = if from == to {
            format!("dt={from}")
        } else {
            format!("dt={from}..{to}")
        };
        if to < from {
            return Err(PullError::Source {
                stream: stream.name.clone(),
                partition,
                message: "the range ends before it starts".into(),
            });
        }
        let spec = PageSpec {
            level,
            windows: &self.windows,
            since: from,
            until: to,
        };
        let days = (to - from).num_days() + 1;
        let use_async = days > i64::from(self.async_threshold_days);
        let mut cost = (0, 0);
        let mut runs = 0;
        let mut frames = Vec::new();
        for account in &self.accounts {
            let got = if use_async {
                self.read_async(
                    ctx,
                    account,
                    &spec,
                    &stream.name,
                    &partition,
                    &mut cost,
                    &mut runs,
                )
                .await?
            } else {
                let url = format!("{}/{account}/insights", self.root);
                let params = self.params(level, from, to);
                self.read_pages(
                    ctx,
                    &url,
                    &params,
                    &spec,
                    &stream.name,
                    &partition,
                    &mut cost,
                )
                .await?
            };
            frames.extend(got);
        }
        let polars = |e: PolarsError| PullError::Source {
            stream: stream.name.clone(),
            partition: partition.clone(),
            message: format!("combining pages: {e}"),
        };
        let mut all = match frames.split_first() {
            Some((first, rest)) => {
                let mut all = first.clone();
                for f in rest {
                    all.vstack_mut(f).map_err(polars)?;
                }
                all
            }
            None => {
                // No account answered a page: cannot happen (every read returns one), but an
                // empty typed frame keeps the contract.
                parse_insights_page(br#"{"data":[]}"#, &spec, ctx.pulled_at, &partition)?.frame
            }
        };
        all.rechunk_mut();
        check_unique(&all, level).map_err(|message| PullError::Source {
            stream: stream.name.clone(),
            partition: partition.clone(),
            message,
        })?;
        let starts = all
            .column("date_start")
            .and_then(|c| c.date().map(|d| d.physical().clone()))
            .map_err(polars)?;
        let mut out = RangePull {
            calls: cost.0,
            retries: cost.1,
            runs,
            ..RangePull::default()
        };
        for day in from.iter_days().take(days as usize) {
            let mask = starts.equal(epoch_days(day));
            out.days.insert(day, all.filter(&mask).map_err(polars)?);
        }
        tracing::info!(stream = %stream.name, partition = %partition, rows = all.height(), calls = out.calls, runs, "Pulled Meta insights.");
        Ok(out)
    }
}

/// True when a body is JSON cut short (or corrupted) rather than complete.
fn json_cut(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .err()
        .is_some_and(|e| matches!(e.classify(), Category::Eof | Category::Syntax))
}

/// Every (account, day, id) once: pages that overlap would double spend.
fn check_unique(df: &DataFrame, level: MetaLevel) -> Result<(), String> {
    let text = |name: &str| -> Result<Vec<Option<String>>, String> {
        Ok(df
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(|e| e.to_string())?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let accounts = text("account_id")?;
    let ids = match key_field(level) {
        Some(k) => text(k)?,
        None => vec![None; df.height()],
    };
    let days: Vec<Option<i32>> = df
        .column("date_start")
        .and_then(|c| c.date().map(|d| d.physical().iter().collect()))
        .map_err(|e| e.to_string())?;
    let mut seen = HashSet::new();
    for ((a, d), id) in accounts.iter().zip(&days).zip(&ids) {
        if !seen.insert((a, d, id)) {
            let day = d.and_then(|d| {
                NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(d)))
            });
            return Err(format!(
                "account {} day {} {} came back twice across pages",
                a.as_deref().unwrap_or(""),
                day.map(|d| d.to_string()).unwrap_or_default(),
                id.as_deref().map(|i| format!("id {i}")).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl Connector for MetaConnector {
    fn source(&self) -> SourceKind {
        SourceKind::Meta
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    /// A day is one sync read per account: at least one page each, and the rows of the
    /// busiest of the last seven landed days spread over pages of `page_limit`.
    fn plan(
        &self,
        _stream: &StreamSpec,
        day: NaiveDate,
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let rows = history.busiest_recent(day, 7);
        let accounts = self.accounts.len() as u64;
        let pages = accounts + rows / u64::from(self.tuning.page_limit.max(1));
        vec![PlannedCalls {
            scope: SCOPE.to_string(),
            calls: u32::try_from(pages).unwrap_or(u32::MAX),
        }]
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let mut range = self.pull_range(ctx, stream, day, day).await?;
        Ok(Pulled {
            frames: range.days.remove(&day).into_iter().collect(),
            calls: range.calls,
            retries: range.retries,
        })
    }
}
