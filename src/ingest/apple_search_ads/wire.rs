//! Apple Search Ads' Campaign Management API v5 report format: the `ReportingRequest` body we
//! send to `POST /api/v5/reports/campaigns`, and the response
//! `{"data": {"reportingDataResponse": {"row": [...]}}, "pagination": {totalResults,
//! startIndex, itemsPerPage}, "error": null}`. With `granularity: DAILY` each row is one
//! campaign: its `metadata` and a `granularity` array of one metrics object per day, using the
//! v5 names (`tapInstalls`, `viewInstalls`, `totalInstalls`, `localSpend {amount, currency}`
//! with the amount a decimal string). Errors come as `{"error": {"errors": [{messageCode,
//! message, field}]}}`.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde_json::{Map, Value, json};

use crate::ingest::http::{Verdict, retry_after, snippet};
use crate::ingest::money::exact_micros;
use crate::ingest::{ParseError, json_body};

/// Stream name in errors, logs and state.
pub const STREAM: &str = "apple_search_ads.campaign_daily";

/// The raw table the stream lands in.
pub const TABLE: &str = "raw.apple_search_ads_campaign_daily";

/// The largest page the reports endpoints serve.
pub const LARGEST_PAGE: u32 = 1000;

/// The longest range one DAILY report may span.
pub const LONGEST_RANGE_DAYS: u32 = 90;

/// Fields of a day's metrics that have their own column.
const KNOWN_METRICS: [&str; 7] = [
    "date",
    "impressions",
    "taps",
    "tapInstalls",
    "viewInstalls",
    "totalInstalls",
    "localSpend",
];

/// In which zone days are cut: the org's own (`ORTZ`) or UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportZone {
    Ortz,
    Utc,
}

impl ReportZone {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportZone::Ortz => "ORTZ",
            ReportZone::Utc => "UTC",
        }
    }
}

/// The report request for `[start, end]` (inclusive days), one page. Rows are ordered by
/// campaign id so that consecutive pages neither repeat nor skip a campaign.
pub fn request_body(
    start: NaiveDate,
    end: NaiveDate,
    offset: u64,
    limit: u32,
    zone: ReportZone,
) -> Value {
    json!({
        "startTime": start.format("%Y-%m-%d").to_string(),
        "endTime": end.format("%Y-%m-%d").to_string(),
        "granularity": "DAILY",
        "timeZone": zone.as_str(),
        "returnRecordsWithNoMetrics": false,
        "returnRowTotals": false,
        "returnGrandTotals": false,
        "selector": {
            "orderBy": [{ "field": "campaignId", "sortOrder": "ASCENDING" }],
            "pagination": { "offset": offset, "limit": limit }
        }
    })
}

/// One page of a report.
#[derive(Debug)]
pub struct Page {
    /// One row per campaign and day, in the raw schema (without `dt`).
    pub frame: DataFrame,
    /// Campaign rows on this page (what `offset` advances by).
    pub campaigns: u64,
    /// `pagination.totalResults`: campaign rows in the whole report.
    pub total_results: u64,
}

/// Days since 1970-01-01, the physical value of a polars Date.
fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("{other} is not an integer")),
    }
}

fn id_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(format!("{other} is not an id")),
    }
}

#[derive(Default)]
struct Columns {
    campaign_id: Vec<String>,
    campaign_name: Vec<Option<String>>,
    campaign_status: Vec<Option<String>>,
    adam_id: Vec<Option<String>>,
    date: Vec<i32>,
    impressions: Vec<i64>,
    taps: Vec<i64>,
    tap_installs: Vec<i64>,
    view_installs: Vec<i64>,
    total_installs: Vec<i64>,
    spend: Vec<i64>,
    currency: Vec<String>,
    metadata: Vec<String>,
    extra: Vec<Option<String>>,
}

/// Parses one report page into rows of `raw.apple_search_ads_campaign_daily` (without `dt`).
/// `offset` is the page's offset, so rows are numbered within the whole report; errors name
/// that row and the field path (`granularity[2].localSpend.amount`). All or nothing; a body
/// cut short is retryable.
pub fn parse_page(
    body: &[u8],
    org_id: &str,
    pulled_at: DateTime<Utc>,
    partition: &str,
    offset: u64,
) -> Result<Page, ParseError> {
    let err = |m: String| ParseError::new(STREAM, partition, m);
    let doc = json_body(body, STREAM, partition, "the report body")?;
    if let Some(e) = error_summary(&doc) {
        return Err(err(format!("the report is an error: {e}")));
    }
    let total_results = doc
        .pointer("/pagination/totalResults")
        .map(|v| int(v).and_then(|n| u64::try_from(n).map_err(|_| format!("{n} is negative"))))
        .transpose()
        .map_err(|m| err(m).in_column("pagination.totalResults"))?;
    let rows: &[Value] = match doc.pointer("/data/reportingDataResponse/row") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(rows)) => rows,
        Some(_) => {
            return Err(err("data.reportingDataResponse.row is not an array".into())
                .in_column("data.reportingDataResponse.row"));
        }
    };
    if doc.get("data").is_none() {
        return Err(err(
            "the body has no data object: not a report response".into()
        ));
    }

    let mut c = Columns::default();
    let mut seen: HashSet<(String, i32)> = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let n = offset + i as u64 + 1;
        let fail = |path: &str, m: String| err(m).at_row(n).in_column(path);
        let metadata = row
            .get("metadata")
            .filter(|m| m.is_object())
            .ok_or_else(|| fail("metadata", "is missing".into()))?;
        let campaign = metadata
            .get("campaignId")
            .ok_or_else(|| fail("metadata.campaignId", "is missing".into()))
            .and_then(|v| id_text(v).map_err(|m| fail("metadata.campaignId", m)))?;
        let str_at = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let name = str_at(metadata.get("campaignName"));
        let status = str_at(metadata.get("campaignStatus"));
        let adam = match metadata.pointer("/app/adamId") {
            None | Some(Value::Null) => None,
            Some(v) => Some(id_text(v).map_err(|m| fail("metadata.app.adamId", m))?),
        };
        let days = match row.get("granularity") {
            Some(Value::Array(d)) => d,
            None | Some(Value::Null) => {
                return Err(fail(
                    "granularity",
                    "is missing: the report was not asked for DAILY granularity".into(),
                ));
            }
            Some(_) => return Err(fail("granularity", "is not an array".into())),
        };
        // Row-level fields besides metadata, metrics and totals (e.g. `other`) are kept.
        let row_extra: Map<String, Value> = row
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "granularity" | "total"))
            .map(|(k, v)| (format!("row.{k}"), v.clone()))
            .collect();
        let metadata_text = metadata.to_string();

        for (k, day) in days.iter().enumerate() {
            let path = |f: &str| format!("granularity[{k}].{f}");
            let Some(day) = day.as_object() else {
                return Err(fail(
                    &format!("granularity[{k}]"),
                    "is not an object".into(),
                ));
            };
            let date_text = day
                .get("date")
                .and_then(Value::as_str)
                .ok_or_else(|| fail(&path("date"), "is missing".into()))?;
            let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
                .map_err(|_| fail(&path("date"), format!("{date_text:?} is not YYYY-MM-DD")))?;
            let count = |f: &str| -> Result<i64, ParseError> {
                match day.get(f) {
                    None | Some(Value::Null) => Ok(0),
                    Some(v) => {
                        let n = int(v).map_err(|m| fail(&path(f), m))?;
                        if n < 0 {
                            return Err(fail(&path(f), format!("{n} is negative")));
                        }
                        Ok(n)
                    }
                }
            };
            let spend = day
                .get("localSpend")
                .filter(|v| v.is_object())
                .ok_or_else(|| fail(&path("localSpend"), "is missing".into()))?;
            let amount = spend
                .get("amount")
                .and_then(|a| match a {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .ok_or_else(|| fail(&path("localSpend.amount"), "is missing".into()))?;
            let micros = exact_micros(&amount).map_err(|m| fail(&path("localSpend.amount"), m))?;
            let currency = spend
                .get("currency")
                .and_then(Value::as_str)
                .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    fail(
                        &path("localSpend.currency"),
                        "is missing or not an ISO 4217 code".into(),
                    )
                })?;
            let d = epoch_days(date);
            if !seen.insert((campaign.clone(), d)) {
                return Err(fail(
                    &path("date"),
                    format!("campaign {campaign} on {date} appears twice on the page"),
                ));
            }
            let mut extra: Map<String, Value> = day
                .iter()
                .filter(|(k, _)| !KNOWN_METRICS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            extra.extend(row_extra.clone());

            c.impressions.push(count("impressions")?);
            c.taps.push(count("taps")?);
            c.tap_installs.push(count("tapInstalls")?);
            c.view_installs.push(count("viewInstalls")?);
            c.total_installs.push(count("totalInstalls")?);
            c.campaign_id.push(campaign.clone());
            c.campaign_name.push(name.clone());
            c.campaign_status.push(status.clone());
            c.adam_id.push(adam.clone());
            c.date.push(d);
            c.spend.push(micros);
            c.currency.push(currency.to_string());
            c.metadata.push(metadata_text.clone());
            c.extra
                .push((!extra.is_empty()).then(|| Value::Object(extra).to_string()));
        }
    }
    let campaigns = rows.len() as u64;
    let frame =
        build_frame(c, org_id, pulled_at).map_err(|e| err(format!("building the frame: {e}")))?;
    Ok(Page {
        frame,
        campaigns,
        // A response without pagination is complete in itself.
        total_results: total_results.unwrap_or(offset + campaigns),
    })
}

fn build_frame(c: Columns, org_id: &str, pulled_at: DateTime<Utc>) -> PolarsResult<DataFrame> {
    let n = c.campaign_id.len();
    DataFrame::new_infer_height(vec![
        Column::new("org_id".into(), vec![org_id.to_string(); n]),
        Column::new("campaign_id".into(), c.campaign_id),
        Column::new("campaign_name".into(), c.campaign_name),
        Column::new("campaign_status".into(), c.campaign_status),
        Column::new("adam_id".into(), c.adam_id),
        Series::new("date".into(), c.date).into_date().into(),
        Column::new("impressions".into(), c.impressions),
        Column::new("taps".into(), c.taps),
        Column::new("tap_installs".into(), c.tap_installs),
        Column::new("view_installs".into(), c.view_installs),
        Column::new("total_installs".into(), c.total_installs),
        Column::new("local_spend_micros".into(), c.spend),
        Column::new("currency".into(), c.currency),
        Column::new("metadata".into(), c.metadata),
        Column::new("extra".into(), c.extra),
        crate::ingest::connector::pulled_at_column(pulled_at, n),
    ])
}

/// `messageCode: message (field)` of each error in a body's `error.errors`, or `None` when
/// the body carries no error.
pub fn error_summary(doc: &Value) -> Option<String> {
    let errors = doc.pointer("/error/errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    Some(
        errors
            .iter()
            .map(|e| {
                let code = e.get("messageCode").and_then(Value::as_str).unwrap_or("?");
                let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                match e
                    .get("field")
                    .and_then(Value::as_str)
                    .filter(|f| !f.is_empty())
                {
                    Some(f) => format!("{code}: {message} (field {f})"),
                    None => format!("{code}: {message}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// How an Apple Search Ads response reads: 2xx done; 429 and 5xx retried after `Retry-After`
/// when sent; anything else fatal, with Apple's `messageCode` and message.
pub fn verdict(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let code = status.as_u16();
    let summary = serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(error_summary)
        .unwrap_or_else(|| snippet(body));
    if code == 429 || status.is_server_error() {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: format!("HTTP {code} {summary}"),
        };
    }
    Verdict::Fatal(format!("HTTP {code} {summary}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
