//! The campaign report client, behind a trait: the Campaign Management API (v5) closes on
//! 2027-01-26, and its successor, the Apple Ads Platform API (`POST
//! /v1/reports/apps/campaigns/query`, `timeRange`/`pageSize`, `granularMetrics`), asks and
//! answers differently. A client for it implements [`CampaignReports`], producing the same
//! raw rows, and the connector, the schema and the tests stay as they are.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{Days, NaiveDate};

use super::auth::{AppleAuth, TOKEN_SCOPE};
use super::wire::{
    LARGEST_PAGE, LONGEST_RANGE_DAYS, Page, ReportZone, STREAM, parse_page, request_body, verdict,
};
use crate::ingest::connector::{PlannedCalls, PullContext, PullError, Pulled, fetch_parsed};

/// Budget scope of report calls.
pub(crate) const SCOPE: &str = "apple_search_ads";

/// Campaign metrics per day.
#[async_trait]
pub trait CampaignReports: Send + Sync {
    /// Rows of `raw.apple_search_ads_campaign_daily` (without `dt`) for every campaign and day
    /// in `[start, end]`, each exactly once.
    async fn campaign_days(
        &self,
        ctx: &PullContext<'_>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Pulled, PullError>;

    /// The calls a range of `days` days with about `campaigns` campaigns takes, per scope.
    fn planned_calls(&self, days: u32, campaigns: u64) -> Vec<PlannedCalls>;
}

/// `POST {root}/api/v5/reports/campaigns`: DAILY granularity, ranges split into windows of at
/// most 90 days, each window paged with `selector.pagination {offset, limit}` until
/// `pagination.totalResults` campaign rows have come.
#[derive(Debug)]
pub struct CampaignManagementV5 {
    url: String,
    org_id: String,
    auth: Arc<AppleAuth>,
    page_size: u32,
    max_days: u32,
    zone: ReportZone,
}

impl CampaignManagementV5 {
    pub fn new(base_url: &str, org_id: u64, auth: Arc<AppleAuth>) -> Self {
        CampaignManagementV5 {
            url: format!(
                "{}/api/v5/reports/campaigns",
                base_url.trim_end_matches('/')
            ),
            org_id: org_id.to_string(),
            auth,
            page_size: LARGEST_PAGE,
            max_days: LONGEST_RANGE_DAYS,
            zone: ReportZone::Ortz,
        }
    }

    /// Campaign rows per page (1 to 1000; default 1000).
    pub fn page_size(mut self, rows: u32) -> Self {
        self.page_size = rows.clamp(1, LARGEST_PAGE);
        self
    }

    /// Days per request window (1 to 90; default 90).
    pub fn max_days(mut self, days: u32) -> Self {
        self.max_days = days.clamp(1, LONGEST_RANGE_DAYS);
        self
    }

    /// The zone days are cut in (default the org's own, `ORTZ`).
    pub fn zone(mut self, zone: ReportZone) -> Self {
        self.zone = zone;
        self
    }

    /// The windows `[start, end]` is asked in.
    pub fn windows(&self, start: NaiveDate, end: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        let mut from = start;
        while from <= end {
            let to = from
                .checked_add_days(Days::new(u64::from(self.max_days) - 1))
                .map_or(end, |d| d.min(end));
            out.push((from, to));
            match to.succ_opt() {
                Some(next) => from = next,
                None => break,
            }
        }
        out
    }

    /// One page, with a new token and one more try when the token is refused.
    async fn page(
        &self,
        ctx: &PullContext<'_>,
        window: (NaiveDate, NaiveDate),
        offset: u64,
        partition: &str,
        pulled: &mut Pulled,
    ) -> Result<Page, PullError> {
        let body = request_body(window.0, window.1, offset, self.page_size, self.zone);
        let context = format!("orgId={}", self.org_id);
        let mut refreshed = false;
        loop {
            let (token, calls) = self.auth.token(ctx, STREAM, partition).await?;
            pulled.calls += calls;
            let refused = AtomicBool::new(false);
            let result = fetch_parsed(
                ctx,
                SCOPE,
                || {
                    ctx.client
                        .post(&self.url)
                        .bearer_auth(token.expose())
                        .header("X-AP-Context", &context)
                        .json(&body)
                },
                |status, headers, bytes| {
                    if status.as_u16() == 401 {
                        refused.store(true, Ordering::Relaxed);
                    }
                    verdict(status, headers, bytes)
                },
                |bytes| parse_page(bytes, &self.org_id, ctx.pulled_at, partition, offset),
            )
            .await;
            match result {
                Ok((page, calls, retries)) => {
                    pulled.calls += calls;
                    pulled.retries += retries;
                    return Ok(page);
                }
                Err(_) if !refreshed && refused.load(Ordering::Relaxed) => {
                    tracing::warn!(
                        stream = STREAM,
                        partition,
                        "Access token refused; fetching a new one."
                    );
                    pulled.calls += 1;
                    pulled.retries += 1;
                    refreshed = true;
                    self.auth.invalidate(&token).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl CampaignReports for CampaignManagementV5 {
    async fn campaign_days(
        &self,
        ctx: &PullContext<'_>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let mut pulled = Pulled::default();
        for window in self.windows(start, end) {
            let partition = if window.0 == window.1 {
                format!("dt={}", window.0)
            } else {
                format!("{}..{}", window.0, window.1)
            };
            let mut offset = 0u64;
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                let page = self
                    .page(ctx, window, offset, &partition, &mut pulled)
                    .await?;
                // Paging must neither repeat nor skip: a campaign on two pages means the
                // report moved under us, and its rows would be counted twice.
                let ids = page
                    .frame
                    .column("campaign_id")
                    .and_then(|c| c.str().cloned())
                    .map_err(|e| PullError::Source {
                        stream: STREAM.into(),
                        partition: partition.clone(),
                        message: format!("reading the page: {e}"),
                    })?;
                let mut on_page: HashSet<&str> = HashSet::new();
                for id in ids.iter().flatten() {
                    if on_page.insert(id) && !seen.insert(id.to_string()) {
                        return Err(PullError::Source {
                            stream: STREAM.into(),
                            partition: partition.clone(),
                            message: format!(
                                "campaign {id} came again on the page at offset {offset}: the report changed while paging"
                            ),
                        });
                    }
                }
                offset += page.campaigns;
                let total = page.total_results;
                let campaigns = page.campaigns;
                pulled.frames.push(page.frame);
                if offset >= total {
                    break;
                }
                if campaigns == 0 {
                    return Err(PullError::Source {
                        stream: STREAM.into(),
                        partition,
                        message: format!(
                            "an empty page at offset {offset} of {total} campaign rows"
                        ),
                    });
                }
            }
            tracing::info!(stream = STREAM, %partition, campaigns = offset, "Pulled a report window.");
        }
        Ok(pulled)
    }

    fn planned_calls(&self, days: u32, campaigns: u64) -> Vec<PlannedCalls> {
        let windows = days.div_ceil(self.max_days).max(1);
        let pages =
            u32::try_from(campaigns.div_ceil(u64::from(self.page_size)).max(1)).unwrap_or(u32::MAX);
        let mut calls = vec![PlannedCalls {
            scope: SCOPE.to_string(),
            calls: windows.saturating_mul(pages),
        }];
        if !self.auth.has_fresh_token() {
            calls.push(PlannedCalls {
                scope: TOKEN_SCOPE.to_string(),
                calls: 1,
            });
        }
        calls
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn ranges_split_into_windows_of_at_most_the_limit() {
        let auth = Arc::new(AppleAuth::new(
            "http://x",
            Secret::new("c"),
            Secret::new("t"),
            Secret::new("k"),
            Secret::new("none"),
        ));
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let v5 = CampaignManagementV5::new("http://x", 1, auth.clone());
        let w = v5.windows(d("2026-01-01"), d("2026-06-30"));
        assert_eq!(
            w,
            [
                (d("2026-01-01"), d("2026-03-31")),
                (d("2026-04-01"), d("2026-06-29")),
                (d("2026-06-30"), d("2026-06-30"))
            ]
        );
        assert!(w.iter().all(|(a, b)| (*b - *a).num_days() < 90));
        let v5 = v5.max_days(2).page_size(2);
        assert_eq!(v5.windows(d("2026-01-01"), d("2026-01-03")).len(), 2);
        assert_eq!(v5.windows(d("2026-01-02"), d("2026-01-01")).len(), 0);
        let plan = v5.planned_calls(3, 5);
        assert_eq!(plan[0].calls, 2 * 3);
        assert_eq!(plan[1].scope, TOKEN_SCOPE);
    }
}
