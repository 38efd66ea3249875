//! The Naver connector: one signed campaign list, then the day's statistics in batches of
//! campaign ids, every attempt signed afresh (the signature covers the timestamp).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::parse::{FIELDS, StatsSpec, parse_campaigns, parse_error, parse_stats};
use super::sign::signature;
use super::{STREAM, TABLE};
use crate::config::{NaverSource, Secret, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
    partition_label,
};
use crate::ingest::http::{Verdict, default_verdict, retry_after, snippet};
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// The budget scope of every Naver call.
const SCOPE: &str = "naver";

/// Campaign ids per `/stats` request.
pub const STATS_BATCH: usize = 50;

/// Reads a Naver answer: HTTP 429 or code 1016 ("too many connections") and 5xx (503 is
/// maintenance) are retried, honouring `Retry-After`; 401/403 mean the key, signature or
/// customer is wrong; anything else is fatal with Naver's code and title.
pub fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let Some(e) = parse_error(body) else {
        return default_verdict(status, headers, body);
    };
    let code = e.code.map(|c| format!(" code {c}")).unwrap_or_default();
    let what = format!("HTTP {}{code}: {}", status.as_u16(), e.message);
    if status == StatusCode::TOO_MANY_REQUESTS || matches!(e.code, Some(1016 | 429)) {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: format!("throttled: {what}"),
        };
    }
    if status.is_server_error() || e.code == Some(503) {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: what,
        };
    }
    if matches!(status.as_u16(), 401 | 403) {
        return Verdict::Fatal(format!(
            "{what} (the API key, secret key or customer id was refused)"
        ));
    }
    if e.message.is_empty() {
        return Verdict::Fatal(format!("HTTP {}{code}: {}", status.as_u16(), snippet(body)));
    }
    Verdict::Fatal(what)
}

/// Pulls Naver Search Ad statistics.
pub struct NaverConnector {
    base: String,
    customer_id: u64,
    api_key: Secret,
    secret_key: Secret,
    streams: Vec<StreamSpec>,
    /// Campaign ids per `/stats` call ([`STATS_BATCH`] unless changed).
    batch: usize,
}

impl std::fmt::Debug for NaverConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NaverConnector")
            .field("base", &self.base)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

impl NaverConnector {
    /// A connector for `settings` calling `base_url` (e.g. `https://api.searchad.naver.com`),
    /// signing with `api_key` and `secret_key`.
    pub fn new(
        settings: &NaverSource,
        base_url: &str,
        api_key: Secret,
        secret_key: Secret,
    ) -> Result<Self, SchemaError> {
        Ok(NaverConnector {
            base: base_url.trim_end_matches('/').to_string(),
            customer_id: settings.customer_id,
            api_key,
            secret_key,
            streams: vec![StreamSpec::new(STREAM, TABLE, Cursor::ReportDay)?],
            batch: STATS_BATCH,
        })
    }

    /// The same connector asking `/stats` for at most `ids` campaigns per call (at least 1).
    pub fn with_batch_size(mut self, ids: usize) -> Self {
        self.batch = ids.max(1);
        self
    }

    /// A signed GET of `path` (the API path, e.g. `/stats`), signed at the time of the call.
    fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let ts = Utc::now().timestamp_millis();
        client
            .get(format!("{}{path}", self.base))
            .header("X-Timestamp", ts.to_string())
            .header("X-API-KEY", self.api_key.expose())
            .header("X-Customer", self.customer_id.to_string())
            .header(
                "X-Signature",
                signature(self.secret_key.expose(), ts, "GET", path),
            )
    }

    /// Keeps secrets out of any message built from an answer.
    fn judge(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let scrub = |s: String| {
            [self.api_key.expose(), self.secret_key.expose()]
                .iter()
                .filter(|k| !k.is_empty())
                .fold(s, |s, k| s.replace(k, "***"))
        };
        match verdict(status, headers, body) {
            Verdict::Retry { after, reason } => Verdict::Retry {
                after,
                reason: scrub(reason),
            },
            Verdict::QuotaSpent(m) => Verdict::QuotaSpent(scrub(m)),
            Verdict::Fatal(m) => Verdict::Fatal(scrub(m)),
            Verdict::Done => Verdict::Done,
        }
    }
}

#[async_trait]
impl Connector for NaverConnector {
    fn source(&self) -> SourceKind {
        SourceKind::Naver
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    /// One campaign list, then one `/stats` call per batch of campaigns; the campaigns with
    /// statistics on the busiest of the last seven landed days stand in for the list's size.
    fn plan(
        &self,
        _stream: &StreamSpec,
        day: NaiveDate,
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let rows = history.busiest_recent(day, 7);
        let batches = (rows as usize).div_ceil(self.batch).max(1);
        vec![PlannedCalls {
            scope: SCOPE.to_string(),
            calls: u32::try_from(1 + batches).unwrap_or(u32::MAX),
        }]
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let partition = partition_label(day);
        let (campaigns, mut calls, mut retries) = fetch_parsed(
            ctx,
            SCOPE,
            || self.get(ctx.client, "/ncc/campaigns"),
            |s, h, b| self.judge(s, h, b),
            |b| parse_campaigns(b, &partition),
        )
        .await?;
        let names: HashMap<String, Option<String>> = campaigns
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        let spec = StatsSpec {
            customer_id: self.customer_id,
            since: day,
            until: day,
            names: &names,
        };
        let ids: Vec<&str> = campaigns.iter().map(|c| c.id.as_str()).collect();
        let fields = serde_json::json!(FIELDS).to_string();
        let range =
            serde_json::json!({"since": day.to_string(), "until": day.to_string()}).to_string();
        let mut frames = Vec::new();
        for batch in ids.chunks(self.batch) {
            let query = [
                ("ids", batch.join(",")),
                ("fields", fields.clone()),
                ("timeRange", range.clone()),
                ("timeIncrement", "1".to_string()),
            ];
            let (frame, c, r) = fetch_parsed(
                ctx,
                SCOPE,
                || self.get(ctx.client, "/stats").query(&query),
                |s, h, b| self.judge(s, h, b),
                |b| parse_stats(b, &spec, ctx.pulled_at, &partition),
            )
            .await?;
            calls += c;
            retries += r;
            frames.push(frame);
        }
        let source_error = |message: String| PullError::Source {
            stream: stream.name.clone(),
            partition: partition.clone(),
            message,
        };
        let mut all = match frames.split_first() {
            Some((first, rest)) => {
                let mut all = first.clone();
                for f in rest {
                    all.vstack_mut(f)
                        .map_err(|e| source_error(format!("combining batches: {e}")))?;
                }
                all
            }
            // No campaigns: an empty day, still a complete partition.
            None => parse_stats(br#"{"data":[]}"#, &spec, ctx.pulled_at, &partition)?,
        };
        all.rechunk_mut();
        let ids = all
            .column("campaign_id")
            .and_then(|c| c.str().cloned())
            .map_err(|e| source_error(e.to_string()))?;
        let mut seen = HashSet::new();
        for id in ids.iter().flatten() {
            if !seen.insert(id) {
                return Err(source_error(format!("campaign {id} came back twice")));
            }
        }
        tracing::info!(stream = %stream.name, partition = %partition, campaigns = campaigns.len(), rows = all.height(), calls, "Pulled Naver statistics.");
        Ok(Pulled {
            frames: vec![all],
            calls,
            retries,
        })
    }
}
