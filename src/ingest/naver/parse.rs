//! Naver's answers: the campaign list (`GET /ncc/campaigns`, a JSON array of campaign
//! objects) and the statistics (`GET /stats`, `{"data": [...]}` with one row per id and
//! day), parsed all-or-nothing into `raw.naver_stats` rows.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde_json::error::Category;
use serde_json::{Map, Value};

use super::STREAM;
use crate::ingest::ParseError;
use crate::ingest::money::exact_micros;
use crate::ingest::sheets::cells::epoch_days;

/// The stat fields the connector asks for (and the table has columns for).
pub const FIELDS: [&str; 5] = ["impCnt", "clkCnt", "salesAmt", "ccnt", "convAmt"];

/// A campaign of the list: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaverCampaign {
    pub id: String,
    pub name: Option<String>,
}

fn json(body: &[u8], partition: &str) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        let err = ParseError::new(
            STREAM,
            partition,
            format!("not complete JSON (body cut short or corrupt): {e}"),
        );
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => err.truncated(),
            Category::Data => err,
        }
    })
}

/// Parses `GET /ncc/campaigns`.
pub fn parse_campaigns(body: &[u8], partition: &str) -> Result<Vec<NaverCampaign>, ParseError> {
    let err = |m: String| ParseError::new(STREAM, partition, format!("campaign list: {m}"));
    let Value::Array(items) = json(body, partition)? else {
        return Err(err("not a JSON array".into()));
    };
    let mut seen = HashSet::new();
    items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let row = i as u64 + 1;
            let id = c
                .get("nccCampaignId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    err("no nccCampaignId".into())
                        .at_row(row)
                        .in_column("nccCampaignId")
                })?;
            if !seen.insert(id.to_string()) {
                return Err(err(format!("campaign {id} is listed twice"))
                    .at_row(row)
                    .in_column("nccCampaignId"));
            }
            Ok(NaverCampaign {
                id: id.to_string(),
                name: c.get("name").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// A number as its exact text (Naver sends numbers; strings are accepted too).
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
}

/// What a stats answer is for.
#[derive(Debug, Clone, Copy)]
pub struct StatsSpec<'a> {
    pub customer_id: u64,
    pub since: NaiveDate,
    pub until: NaiveDate,
    /// Campaign names by id, from the campaign list.
    pub names: &'a HashMap<String, Option<String>>,
}

/// Parses one `GET /stats` answer into `raw.naver_stats` rows (without `dt`).
pub fn parse_stats(
    body: &[u8],
    spec: &StatsSpec<'_>,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<DataFrame, ParseError> {
    let err = |m: String| ParseError::new(STREAM, partition, m);
    let doc = json(body, partition)?;
    let Some(Value::Array(rows)) = doc.get("data") else {
        return Err(err("the stats answer has no data array".into()).in_column("data"));
    };
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut names: Vec<Option<String>> = Vec::with_capacity(n);
    let (mut starts, mut ends) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut counts: [Vec<i64>; 3] = Default::default();
    let (mut spend, mut value) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut extras: Vec<Option<String>> = Vec::with_capacity(n);
    for (i, row) in rows.iter().enumerate() {
        let fail = |field: &str, m: String| err(m).at_row(i as u64 + 1).in_column(field);
        let Value::Object(row) = row else {
            return Err(fail("data", "the row is not a JSON object".into()));
        };
        let id = row
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fail("id", "is missing".into()))?;
        let Some(name) = spec.names.get(id) else {
            return Err(fail(
                "id",
                format!("{id} is not a campaign of the list that was asked for"),
            ));
        };
        let date = |k: &str| -> Result<NaiveDate, ParseError> {
            let s = row
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| fail(k, "is missing".into()))?;
            // Dates come as YYYY-MM-DD (older answers: with a time part).
            NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map_err(|_| fail(k, format!("{s:?} is not a date")))
        };
        let start = date("dateStart")?;
        let end = date("dateEnd")?;
        if start != end {
            return Err(fail(
                "dateEnd",
                format!(
                    "the row covers {start}..{end}, not one day: timeIncrement=1 was not honoured"
                ),
            ));
        }
        if start < spec.since || start > spec.until {
            return Err(fail(
                "dateStart",
                format!(
                    "{start} is outside the requested {}..{}",
                    spec.since, spec.until
                ),
            ));
        }
        let field = |k: &str| -> Result<i64, ParseError> {
            let v = row.get(k).ok_or_else(|| fail(k, "is missing".into()))?;
            let s = number_text(v).ok_or_else(|| fail(k, format!("{v} is not a number")))?;
            exact_micros(&s).map_err(|m| fail(k, m))
        };
        for (j, k) in ["impCnt", "clkCnt", "ccnt"].iter().enumerate() {
            let micros = field(k)?;
            if micros % 1_000_000 != 0 || micros < 0 {
                return Err(fail(k, format!("{} is not a count", micros as f64 / 1e6)));
            }
            counts[j].push(micros / 1_000_000);
        }
        spend.push(field("salesAmt")?);
        value.push(field("convAmt")?);
        let extra: Map<String, Value> = row
            .iter()
            .filter(|(k, _)| {
                !FIELDS.contains(&k.as_str())
                    && !matches!(k.as_str(), "id" | "dateStart" | "dateEnd")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        extras.push((!extra.is_empty()).then(|| Value::Object(extra).to_string()));
        ids.push(id.to_string());
        names.push(name.clone());
        starts.push(epoch_days(start));
        ends.push(epoch_days(end));
    }
    let [imps, clicks, conversions] = counts;
    DataFrame::new_infer_height(vec![
        Column::new("customer_id".into(), vec![spec.customer_id.to_string(); n]),
        Column::new("campaign_id".into(), ids),
        Column::new("campaign_name".into(), names),
        Series::new("date_start".into(), starts).into_date().into(),
        Series::new("date_end".into(), ends).into_date().into(),
        Column::new("impressions".into(), imps),
        Column::new("clicks".into(), clicks),
        Column::new("spend_micros".into(), spend),
        Column::new("conversions".into(), conversions),
        Column::new("conversion_value_micros".into(), value),
        Column::new("currency".into(), vec!["KRW".to_string(); n]),
        Column::new("extra".into(), extras),
        crate::ingest::connector::pulled_at_column(pulled_at, n),
    ])
    .map_err(|e| err(format!("building the frame: {e}")))
}

/// Naver's error body: `{"code": 1016, "title": "...", ...}` (some answers say `message` or
/// `detail` instead of `title`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NaverError {
    pub code: Option<i64>,
    pub message: String,
}

pub fn parse_error(body: &[u8]) -> Option<NaverError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object()?;
    let code = o
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
    let message = ["title", "message", "detail"]
        .iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(": ");
    (code.is_some() || !message.is_empty()).then_some(NaverError { code, message })
}
