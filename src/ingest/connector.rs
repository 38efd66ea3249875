//! The one trait every source implements. A connector declares its streams (what it lands,
//! keyed how, advancing by which cursor), says how many calls a partition will cost so the
//! scheduler can refuse pulls the budget cannot finish, and pulls one partition into typed
//! frames of the stream's raw schema. Landing, state and budgets belong to the scheduler, so
//! a connector only talks to its source.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::DataFrame;

use super::ParseError;
use super::budget::SourceBudget;
use super::http::{CallError, RetryPolicy};
use super::state::StreamState;
use crate::config::SourceKind;
use crate::lake::LakeError;
use crate::schema::{Registry, SchemaError};

/// How a stream's partitions relate to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// One partition per report day: the data of that day. New days are pulled as they
    /// close, and recent ones again within the restatement window, since sources revise them.
    ReportDay,
    /// One partition per pull day: a snapshot of the source's current state (user
    /// profiles, a hand-kept sheet). Taken at most once a day; history cannot be re-pulled.
    Snapshot,
}

/// One stream a connector lands, e.g. `mixpanel.export` into `raw.mixpanel_export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// `<source>.<stream>`: the name in logs, state and the summary.
    pub name: String,
    /// The raw table, `raw.<table>`.
    pub table: &'static str,
    /// The table's primary key (from its schema), which a re-pull of a partition replaces.
    pub primary_key: Vec<String>,
    pub cursor: Cursor,
}

impl StreamSpec {
    /// A stream over a registered table; its key comes from the table's schema.
    pub fn new(
        name: impl Into<String>,
        table: &'static str,
        cursor: Cursor,
    ) -> Result<Self, SchemaError> {
        let schema = Registry::embedded()?.get(table)?;
        Ok(StreamSpec {
            name: name.into(),
            table,
            primary_key: schema.primary_key.clone(),
            cursor,
        })
    }
}

/// What a pull may use: the HTTP client, the source's budget, the retry policy, and what
/// the stream has landed before (volumes guide window planning).
#[derive(Debug, Clone)]
pub struct PullContext<'a> {
    pub client: &'a reqwest::Client,
    pub budget: Arc<SourceBudget>,
    pub policy: RetryPolicy,
    /// The source's timeout for one request (`timeout_seconds`).
    pub timeout: std::time::Duration,
    pub history: &'a StreamState,
    /// When the pull started; lands as each row's `pulled_at`.
    pub pulled_at: DateTime<Utc>,
}

/// Calls a partition is expected to take from one budget scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCalls {
    pub scope: String,
    pub calls: u32,
}

/// One pulled partition: frames in the stream's raw schema (without `dt`), landed as one
/// version of the partition, and what the pull cost.
#[derive(Debug, Default)]
pub struct Pulled {
    pub frames: Vec<DataFrame>,
    /// Calls made (every attempt counts).
    pub calls: u32,
    /// Attempts that were retries (throttling, 5xx, cut bodies).
    pub retries: u32,
}

impl Pulled {
    pub fn rows(&self) -> u64 {
        self.frames.iter().map(|f| f.height() as u64).sum()
    }

    /// Adds another pull's frames and costs to this one.
    pub fn absorb(&mut self, other: Pulled) {
        self.frames.extend(other.frames);
        self.calls += other.calls;
        self.retries += other.retries;
    }
}

/// Why a partition was not pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Not failed, just not possible now (data not published yet, a split that would not fit
    /// the day's quota): the next run tries again.
    #[error("{stream} {partition}: deferred: {reason}")]
    Deferred {
        stream: String,
        partition: String,
        reason: String,
    },
    #[error("{stream} {partition}: {message}")]
    Source {
        stream: String,
        partition: String,
        message: String,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
}

impl PullError {
    /// A deferral (budget, quota, data not there yet) rather than a failure.
    pub fn is_deferral(&self) -> bool {
        match self {
            PullError::Call(e) => e.is_deferral(),
            PullError::Deferred { .. } => true,
            _ => false,
        }
    }

    /// The pull itself cost calls before failing; they are counted in the summary.
    pub fn deferred(stream: &str, day: NaiveDate, reason: impl Into<String>) -> Self {
        PullError::Deferred {
            stream: stream.to_string(),
            partition: partition_label(day),
            reason: reason.into(),
        }
    }
}

/// The `pulled_at` column every raw frame carries: `n` copies of the pull's start, as
/// `datetime[ms, UTC]`.
pub fn pulled_at_column(pulled_at: DateTime<Utc>, n: usize) -> polars::prelude::Column {
    use polars::prelude::{IntoSeries as _, TimeUnit, TimeZone};
    polars::prelude::Int64Chunked::from_vec(
        "pulled_at".into(),
        vec![pulled_at.timestamp_millis(); n],
    )
    .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    .into_series()
    .into()
}

/// `dt=YYYY-MM-DD`, the partition label of errors.
pub fn partition_label(day: NaiveDate) -> String {
    format!("dt={day}")
}

/// The label of a pull of consecutive days: `dt=D`, or `dt=D1..D2` for several.
pub fn days_label(days: &[NaiveDate]) -> String {
    match (days.first(), days.last()) {
        (Some(a), Some(b)) if a != b => format!("dt={a}..{b}"),
        (Some(a), _) => partition_label(*a),
        _ => String::new(),
    }
}

/// A source's collector.
#[async_trait]
pub trait Connector: Send + Sync {
    fn source(&self) -> SourceKind;

    /// The streams the connector lands, in the order they are pulled.
    fn streams(&self) -> &[StreamSpec];

    /// The calls pulling `day` of `stream` will take, per budget scope, planned from what the
    /// stream landed before. The scheduler starts a pull only when every scope can pay.
    fn plan(&self, stream: &StreamSpec, day: NaiveDate, history: &StreamState)
    -> Vec<PlannedCalls>;

    /// Pulls one partition: the report day, or for snapshot streams the pull day.
    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError>;

    /// How many consecutive report days, from `day` on, one backfill pull of `stream` may
    /// cover, judged from what it landed before. Sources whose calls cost the same whatever
    /// their date range (AppsFlyer's raw-data exports, with a daily quota per report) cover
    /// many days per call; the default, 1, pulls day by day.
    fn days_per_pull(&self, _stream: &StreamSpec, _day: NaiveDate, _history: &StreamState) -> u32 {
        1
    }

    /// The calls pulling the consecutive `days` in one go will take: what the scheduler
    /// reserves for every pull (one day unless [`Connector::days_per_pull`] allows more). The
    /// default adds up the days' plans, per scope.
    fn plan_days(
        &self,
        stream: &StreamSpec,
        days: &[NaiveDate],
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let mut total: Vec<PlannedCalls> = Vec::new();
        for day in days {
            for p in self.plan(stream, *day, history) {
                match total.iter_mut().find(|t| t.scope == p.scope) {
                    Some(t) => t.calls += p.calls,
                    None => total.push(p),
                }
            }
        }
        total
    }

    /// Pulls the consecutive `days` in one go: one [`Pulled`] per day, in order, each landed
    /// as that day's partition; the scheduler makes every pull through this. Fails whole, so
    /// no day is landed from a partial pull. The default pulls day by day.
    async fn pull_days(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        days: &[NaiveDate],
    ) -> Result<Vec<Pulled>, PullError> {
        let mut out = Vec::with_capacity(days.len());
        for day in days {
            out.push(self.pull(ctx, stream, *day).await?);
        }
        Ok(out)
    }
}

/// Makes a call and parses its body, calling again when the body came back cut short
/// (a retryable [`ParseError`]) until the retry policy's attempts are spent. Every attempt is
/// charged to the budget and counted in the result; each request gets the source's timeout.
pub async fn fetch_parsed<T>(
    ctx: &PullContext<'_>,
    scope: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
    verdict: impl Fn(reqwest::StatusCode, &reqwest::header::HeaderMap, &[u8]) -> super::http::Verdict,
    parse: impl Fn(&[u8]) -> Result<T, ParseError>,
) -> Result<(T, u32, u32), PullError> {
    fetch_with(ctx, scope, make, verdict, |body| {
        std::future::ready(parse(&body))
    })
    .await
}

/// [`fetch_parsed`] for bodies of millions of rows: the parse runs on tokio's blocking pool,
/// so a second of parsing does not stall the runtime's few worker threads (and with them
/// every other source's calls, and the local server's answers).
pub async fn fetch_parsed_blocking<T: Send + 'static>(
    ctx: &PullContext<'_>,
    scope: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
    verdict: impl Fn(reqwest::StatusCode, &reqwest::header::HeaderMap, &[u8]) -> super::http::Verdict,
    parse: impl Fn(&[u8]) -> Result<T, ParseError> + Clone + Send + 'static,
) -> Result<(T, u32, u32), PullError> {
    fetch_with(ctx, scope, make, verdict, |body| {
        let parse = parse.clone();
        async move {
            match tokio::task::spawn_blocking(move || parse(&body)).await {
                Ok(parsed) => parsed,
                // A panic in the parser is a bug: pass it on as one.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(ParseError::new(
                    scope,
                    "",
                    format!("the parse was cancelled (the runtime is shutting down): {e}"),
                )),
            }
        }
    })
    .await
}

async fn fetch_with<T, F>(
    ctx: &PullContext<'_>,
    scope: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
    verdict: impl Fn(reqwest::StatusCode, &reqwest::header::HeaderMap, &[u8]) -> super::http::Verdict,
    parse: impl Fn(bytes::Bytes) -> F,
) -> Result<(T, u32, u32), PullError>
where
    F: std::future::Future<Output = Result<T, ParseError>>,
{
    let mut calls = 0;
    let mut retries = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let reply = super::http::call(
            ctx.client,
            &ctx.budget,
            scope,
            &ctx.policy,
            || make().timeout(ctx.timeout),
            &verdict,
        )
        .await?;
        calls += reply.calls;
        retries += reply.retries;
        match parse(reply.body).await {
            Ok(v) => return Ok((v, calls, retries)),
            Err(e) if e.retryable && attempt < ctx.policy.max_attempts => {
                tracing::warn!(stream = %e.stream, partition = %e.partition, attempt, error = %e, "Body cut short; pulling again.");
                retries += 1;
                tokio::time::sleep(ctx.policy.base_delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
