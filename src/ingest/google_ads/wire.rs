//! Google Ads' REST wire format for `googleAds:searchStream`: the GAQL query we send, the
//! streamed body (a JSON array of batches `{results, fieldMask, requestId}`, pretty-printed
//! over many lines), and its error shape (`{"error": {code, message, status, details}}`, alone
//! or as an element of the array).
//!
//! Proto3 JSON rules apply: int64 values are strings (`"costMicros": "1230000"`), doubles are
//! numbers, field names are lowerCamelCase, and a metric equal to zero is left out of the row,
//! so a missing metric reads as 0. Every field the pipeline does not read is kept in `extra`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde_json::Value;

use crate::ingest::http::{Verdict, retry_after, snippet};
use crate::ingest::oauth::parse_proto_duration;
use crate::ingest::{ParseError, json_body};

/// Stream name in errors, logs and state.
pub const STREAM: &str = "google_ads.campaign_daily";

/// The raw table the stream lands in.
pub const TABLE: &str = "raw.google_ads_campaign_daily";

/// The GAQL fields we select, with the JSON path each comes back under.
pub const FIELDS: [(&str, &str); 13] = [
    ("customer.id", "customer.id"),
    ("customer.currency_code", "customer.currencyCode"),
    ("customer.time_zone", "customer.timeZone"),
    ("campaign.id", "campaign.id"),
    ("campaign.name", "campaign.name"),
    ("campaign.status", "campaign.status"),
    (
        "campaign.advertising_channel_type",
        "campaign.advertisingChannelType",
    ),
    ("segments.date", "segments.date"),
    ("metrics.cost_micros", "metrics.costMicros"),
    ("metrics.impressions", "metrics.impressions"),
    ("metrics.clicks", "metrics.clicks"),
    ("metrics.conversions", "metrics.conversions"),
    (
        "metrics.view_through_conversions",
        "metrics.viewThroughConversions",
    ),
];

/// A server wait longer than this is not a throttle but a spent daily quota: the pull is
/// deferred to a later run instead of sleeping.
pub const LONGEST_WAIT: Duration = Duration::from_secs(600);

/// The query for one report day: every campaign with metrics that day, with the customer's
/// currency and zone selected alongside so each row carries its own currency.
pub fn query(day: NaiveDate) -> String {
    let fields: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    format!(
        "SELECT {} FROM campaign WHERE segments.date BETWEEN '{day}' AND '{day}' ORDER BY campaign.id",
        fields.join(", ")
    )
}

/// `snake_case` GAQL field path to the `lowerCamelCase` JSON path it comes back under.
pub fn json_path(gaql: &str) -> String {
    gaql.split('.')
        .map(|part| {
            let mut out = String::with_capacity(part.len());
            let mut upper = false;
            for c in part.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Flattens a result row into `path → leaf` (objects are walked, arrays are leaves).
fn flatten<'a>(prefix: &str, v: &'a Value, out: &mut BTreeMap<String, &'a Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, child, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf);
        }
    }
}

fn int64(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not an int64")),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an int64")),
        other => Err(format!("{other} is not an int64")),
    }
}

fn double(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        // Proto3 JSON writes non-finite doubles as strings; accept numeric strings too.
        Value::String(s) => s
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!("{other} is not a number")),
    }
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{other} is not a string")),
    }
}

/// Days since 1970-01-01, the physical value of a polars Date.
pub(crate) fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

#[derive(Default)]
struct Columns {
    customer_id: Vec<String>,
    currency: Vec<String>,
    time_zone: Vec<Option<String>>,
    campaign_id: Vec<String>,
    campaign_name: Vec<Option<String>>,
    campaign_status: Vec<Option<String>>,
    channel_type: Vec<Option<String>>,
    date: Vec<i32>,
    cost_micros: Vec<i64>,
    impressions: Vec<i64>,
    clicks: Vec<i64>,
    conversions: Vec<f64>,
    view_through: Vec<i64>,
    extra: Vec<Option<String>>,
    request_id: Vec<Option<String>>,
}

/// Parses a whole `searchStream` body into the `raw.google_ads_campaign_daily` frame (without
/// `dt`). All or nothing: a body cut short in transit is a retryable error, an error element
/// in the stream or an unreadable field fails the whole body, naming the 1-based row (counted
/// across batches) and the field's JSON path. With `day`, a row of any other date is an error:
/// it would land in the wrong partition.
pub fn parse_search_stream(
    body: &[u8],
    pulled_at: DateTime<Utc>,
    partition: &str,
    day: Option<NaiveDate>,
) -> Result<DataFrame, ParseError> {
    let err = |m: String| ParseError::new(STREAM, partition, m);
    let doc = json_body(body, STREAM, partition, "the searchStream body")?;
    let Value::Array(batches) = doc else {
        if let Some(e) = ApiError::from_value(&doc) {
            return Err(err(format!("the stream is an error: {}", e.summary())));
        }
        return Err(err(
            "the searchStream body is not a JSON array of batches".into()
        ));
    };

    let mut c = Columns::default();
    let mut keys: HashSet<(String, String, i32)> = HashSet::new();
    let mut row = 0u64;
    for (b, batch) in batches.iter().enumerate() {
        if let Some(e) = ApiError::from_value(batch) {
            let failure = err(format!(
                "batch {} of the stream is an error: {}",
                b + 1,
                e.summary()
            ));
            // A stream broken off by a transient server failure is incomplete, like a cut
            // body: pull it again, never land the batches before the error.
            return Err(if e.is_transient() {
                failure.truncated()
            } else {
                failure
            });
        }
        let Value::Object(batch) = batch else {
            return Err(err(format!("batch {} is not an object", b + 1)));
        };
        let request_id = batch.get("requestId").and_then(Value::as_str);
        let results = match batch.get("results") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(r)) => r,
            Some(_) => return Err(err(format!("batch {}: results is not an array", b + 1))),
        };
        for result in results {
            row += 1;
            let fail = |path: &str, m: String| err(m).at_row(row).in_column(path);
            if !result.is_object() {
                return Err(err("the result is not an object".into()).at_row(row));
            }
            let mut leaves = BTreeMap::new();
            flatten("", result, &mut leaves);
            let mut take = |path: &str| leaves.remove(path).filter(|v| !v.is_null());

            let required_text = |v: Option<&Value>, path: &str| -> Result<String, ParseError> {
                let v = v.ok_or_else(|| fail(path, "is missing".into()))?;
                let s = text(v).map_err(|m| fail(path, m))?;
                if s.trim().is_empty() {
                    return Err(fail(path, "is empty".into()));
                }
                Ok(s)
            };
            let optional_text =
                |v: Option<&Value>, path: &str| -> Result<Option<String>, ParseError> {
                    v.map(|v| text(v).map_err(|m| fail(path, m))).transpose()
                };
            let count = |v: Option<&Value>, path: &str| -> Result<i64, ParseError> {
                v.map(|v| int64(v).map_err(|m| fail(path, m)))
                    .transpose()
                    .map(|n| n.unwrap_or(0))
            };

            let customer = required_text(take("customer.id"), "customer.id")?;
            let currency = required_text(take("customer.currencyCode"), "customer.currencyCode")?;
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(fail(
                    "customer.currencyCode",
                    format!("{currency:?} is not an ISO 4217 code"),
                ));
            }
            let zone = optional_text(take("customer.timeZone"), "customer.timeZone")?;
            let campaign = required_text(take("campaign.id"), "campaign.id")?;
            let name = optional_text(take("campaign.name"), "campaign.name")?;
            let status = optional_text(take("campaign.status"), "campaign.status")?;
            let channel = optional_text(
                take("campaign.advertisingChannelType"),
                "campaign.advertisingChannelType",
            )?;
            let date_text = required_text(take("segments.date"), "segments.date")?;
            let date = NaiveDate::parse_from_str(&date_text, "%Y-%m-%d")
                .map_err(|_| fail("segments.date", format!("{date_text:?} is not YYYY-MM-DD")))?;
            if let Some(d) = day
                && d != date
            {
                return Err(fail(
                    "segments.date",
                    format!("the row is for {date}, but {d} was asked for"),
                ));
            }
            let cost = count(take("metrics.costMicros"), "metrics.costMicros")?;
            let impressions = count(take("metrics.impressions"), "metrics.impressions")?;
            let clicks = count(take("metrics.clicks"), "metrics.clicks")?;
            let conversions = take("metrics.conversions")
                .map(|v| double(v).map_err(|m| fail("metrics.conversions", m)))
                .transpose()?
                .unwrap_or(0.0);
            let view_through = count(
                take("metrics.viewThroughConversions"),
                "metrics.viewThroughConversions",
            )?;
            for (path, n) in [
                ("metrics.costMicros", cost),
                ("metrics.impressions", impressions),
                ("metrics.clicks", clicks),
            ] {
                if n < 0 {
                    return Err(fail(path, format!("{n} is negative")));
                }
            }
            let days = epoch_days(date);
            if !keys.insert((customer.clone(), campaign.clone(), days)) {
                return Err(fail(
                    "campaign.id",
                    format!("campaign {campaign} of customer {customer} on {date} appears twice"),
                ));
            }
            // Whatever is left (resource names, fields a future query adds) is kept as sent.
            let extra: serde_json::Map<String, Value> =
                leaves.into_iter().map(|(k, v)| (k, v.clone())).collect();

            c.customer_id.push(customer);
            c.currency.push(currency);
            c.time_zone.push(zone);
            c.campaign_id.push(campaign);
            c.campaign_name.push(name);
            c.campaign_status.push(status);
            c.channel_type.push(channel);
            c.date.push(days);
            c.cost_micros.push(cost);
            c.impressions.push(impressions);
            c.clicks.push(clicks);
            c.conversions.push(conversions);
            c.view_through.push(view_through);
            c.extra
                .push((!extra.is_empty()).then(|| Value::Object(extra).to_string()));
            c.request_id.push(request_id.map(str::to_string));
        }
    }
    build_frame(c, pulled_at).map_err(|e| err(format!("building the frame: {e}")))
}

fn build_frame(c: Columns, pulled_at: DateTime<Utc>) -> PolarsResult<DataFrame> {
    let n = c.customer_id.len();
    let columns = vec![
        Column::new("customer_id".into(), c.customer_id),
        Column::new("currency".into(), c.currency),
        Column::new("customer_time_zone".into(), c.time_zone),
        Column::new("campaign_id".into(), c.campaign_id),
        Column::new("campaign_name".into(), c.campaign_name),
        Column::new("campaign_status".into(), c.campaign_status),
        Column::new("advertising_channel_type".into(), c.channel_type),
        Series::new("date".into(), c.date).into_date().into(),
        Column::new("cost_micros".into(), c.cost_micros),
        Column::new("impressions".into(), c.impressions),
        Column::new("clicks".into(), c.clicks),
        Column::new("conversions".into(), c.conversions),
        Column::new("view_through_conversions".into(), c.view_through),
        Column::new("extra".into(), c.extra),
        Column::new("request_id".into(), c.request_id),
        crate::ingest::connector::pulled_at_column(pulled_at, n),
    ];
    DataFrame::new_infer_height(columns)
}

/// Google's error body: `{"error": {"code", "message", "status", "details": [...]}}`, where a
/// `GoogleAdsFailure` detail lists `errors` with an `errorCode` (`{"quotaError":
/// "RESOURCE_EXHAUSTED"}`), a message and, for quota errors, `quotaErrorDetails.retryDelay`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Option<i64>,
    pub status: Option<String>,
    pub message: Option<String>,
    /// `kind=VALUE` of each GoogleAdsError, e.g. `quotaError=RESOURCE_EXHAUSTED`.
    pub error_codes: Vec<String>,
    /// Messages of the GoogleAdsErrors.
    pub messages: Vec<String>,
    /// The longest wait any detail names.
    pub retry_delay: Option<Duration>,
}

impl ApiError {
    /// The error in a body: an `{"error": ...}` object, or the first such element of an array.
    pub fn from_body(body: &[u8]) -> Option<ApiError> {
        let v: Value = serde_json::from_slice(body).ok()?;
        match &v {
            Value::Array(items) => items.iter().find_map(ApiError::from_value),
            _ => ApiError::from_value(&v),
        }
    }

    fn from_value(v: &Value) -> Option<ApiError> {
        let e = v.get("error")?;
        if !e.is_object() {
            return None;
        }
        let mut out = ApiError {
            code: e.get("code").and_then(Value::as_i64),
            status: e.get("status").and_then(Value::as_str).map(str::to_string),
            message: e.get("message").and_then(Value::as_str).map(str::to_string),
            error_codes: Vec::new(),
            messages: Vec::new(),
            retry_delay: None,
        };
        let mut delay = |d: Option<&Value>| {
            if let Some(d) = d.and_then(Value::as_str).and_then(parse_proto_duration) {
                out.retry_delay = Some(out.retry_delay.map_or(d, |o: Duration| o.max(d)));
            }
        };
        let details = e.get("details").and_then(Value::as_array);
        let mut codes = Vec::new();
        let mut messages = Vec::new();
        for detail in details.into_iter().flatten() {
            // google.rpc.RetryInfo
            delay(detail.get("retryDelay"));
            for ge in detail
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(Value::Object(code)) = ge.get("errorCode") {
                    for (k, v) in code {
                        codes.push(format!("{k}={}", v.as_str().unwrap_or("?")));
                    }
                }
                if let Some(m) = ge.get("message").and_then(Value::as_str) {
                    messages.push(m.to_string());
                }
                delay(
                    ge.get("details")
                        .and_then(|d| d.get("quotaErrorDetails"))
                        .and_then(|q| q.get("retryDelay")),
                );
            }
        }
        out.error_codes = codes;
        out.messages = messages;
        Some(out)
    }

    /// One line for messages: status, error codes and messages.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.status {
            parts.push(s.clone());
        }
        if !self.error_codes.is_empty() {
            parts.push(self.error_codes.join(", "));
        }
        let message = if self.messages.is_empty() {
            self.message.clone().unwrap_or_default()
        } else {
            self.messages.join(" / ")
        };
        let head = parts.join(" ");
        if message.is_empty() {
            head
        } else {
            format!("{head}: {message}")
        }
    }

    /// A failure that may pass on its own (Google's transient gRPC statuses).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("INTERNAL" | "UNAVAILABLE" | "DEADLINE_EXCEEDED")
        )
    }

    fn is_unauthenticated(&self) -> bool {
        self.status.as_deref() == Some("UNAUTHENTICATED")
    }
}

/// How a Google Ads response reads. 429 `RESOURCE_EXHAUSTED` is retried after the
/// `retryDelay` Google names (quota details or RetryInfo), or deferred as a spent quota when
/// that wait is longer than [`LONGEST_WAIT`] (the daily operations quota); 5xx is retried;
/// anything else (bad query, missing permission, refused credentials) is fatal with Google's
/// own status, error codes and message.
pub fn verdict(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let code = status.as_u16();
    let parsed = ApiError::from_body(body);
    let summary = parsed
        .as_ref()
        .map(ApiError::summary)
        .unwrap_or_else(|| snippet(body));
    let exhausted = parsed
        .as_ref()
        .is_some_and(|e| e.status.as_deref() == Some("RESOURCE_EXHAUSTED"));
    if code == 429 || exhausted {
        let wait = parsed
            .as_ref()
            .and_then(|e| e.retry_delay)
            .or_else(|| retry_after(headers));
        return match wait {
            Some(w) if w > LONGEST_WAIT => Verdict::QuotaSpent(format!(
                "HTTP {code} {summary} (Google asks to wait {}s)",
                w.as_secs()
            )),
            after => Verdict::Retry {
                after,
                reason: format!("HTTP {code} {summary}"),
            },
        };
    }
    if status.is_server_error() {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: format!("HTTP {code} {summary}"),
        };
    }
    Verdict::Fatal(format!("HTTP {code} {summary}"))
}

/// Whether a refused request says the access token was not accepted (expired or revoked), so
/// a new token may help.
pub fn is_token_refusal(status: reqwest::StatusCode, body: &[u8]) -> bool {
    status.as_u16() == 401
        && ApiError::from_body(body).is_none_or(|e| {
            e.is_unauthenticated() && !e.error_codes.iter().any(|c| c.contains("DEVELOPER_TOKEN"))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
