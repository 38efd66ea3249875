//! One insights page (`{"data": [...], "paging": {...}}`, sync or from a report run) into a
//! frame of `raw.meta_insights_<level>`. All-or-nothing: a body cut short is a retryable
//! error, an impossible value fails the page naming its row and field, and nothing partial
//! is returned.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde_json::error::Category;
use serde_json::{Map, Value};

use super::{level_fields, stream_name};
use crate::config::{AttributionWindow, MetaLevel};
use crate::ingest::ParseError;
use crate::ingest::money::exact_micros;
use crate::ingest::sheets::cells::epoch_days;

/// What the page was asked for: the level, the windows, and the days it may hold.
#[derive(Debug, Clone, Copy)]
pub struct PageSpec<'a> {
    pub level: MetaLevel,
    pub windows: &'a [AttributionWindow],
    pub since: NaiveDate,
    pub until: NaiveDate,
}

/// A parsed page and where the next one starts.
#[derive(Debug)]
pub struct InsightsPage {
    pub frame: DataFrame,
    /// `paging.cursors.after`, to ask for the next page.
    pub after: Option<String>,
    /// `paging.next` was present: there is a next page. Absent on the last page.
    pub has_next: bool,
}

/// Fields every level's table has columns for; with the level's ids and names (see
/// [`level_fields`]) they are what the row keeps in columns, everything else lands in `extra`
/// (ids of a lower level than the table's included).
const COMMON: [&str; 9] = [
    "account_id",
    "account_currency",
    "date_start",
    "date_stop",
    "impressions",
    "clicks",
    "spend",
    "actions",
    "action_values",
];

/// A scalar as text: Meta sends numbers and ids as strings, occasionally as numbers.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses one page. `partition` only labels errors.
pub fn parse_insights_page(
    body: &[u8],
    spec: &PageSpec<'_>,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<InsightsPage, ParseError> {
    let stream = stream_name(spec.level);
    let err = |m: String| ParseError::new(&stream, partition, m);
    let doc: Value = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => err(format!(
            "not a complete JSON page (body cut short or corrupt): {e}"
        ))
        .truncated(),
        Category::Data => err(format!("not an insights page: {e}")),
    })?;
    let Value::Object(doc) = doc else {
        return Err(err("the page is not a JSON object".into()));
    };
    if let Some(e) = doc.get("error") {
        return Err(err(format!("the page is a Graph error: {e}")));
    }
    let Some(Value::Array(rows)) = doc.get("data") else {
        return Err(err("the page has no data array".into()).in_column("data"));
    };
    let paging = doc.get("paging").and_then(Value::as_object);
    let has_next = paging.is_some_and(|p| p.get("next").is_some_and(|n| !n.is_null()));
    let after = paging
        .and_then(|p| p.get("cursors"))
        .and_then(|c| c.get("after"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if has_next && after.is_none() {
        return Err(
            err("paging.next is set but paging.cursors.after is missing".into())
                .in_column("paging"),
        );
    }

    let windows: Vec<&str> = spec.windows.iter().map(|w| w.name()).collect();
    let ids = level_fields(spec.level);
    let mut cols = Cols::new(ids.len(), rows.len());
    for (i, row) in rows.iter().enumerate() {
        let n = i as u64 + 1;
        let fail = |field: &str, m: String| err(m).at_row(n).in_column(field);
        let Value::Object(row) = row else {
            return Err(fail("data", "the row is not a JSON object".into()));
        };
        let text = |k: &str| {
            row.get(k)
                .filter(|v| !v.is_null())
                .map(|v| scalar(v).ok_or_else(|| fail(k, format!("{v} is not a string or number"))))
        };
        let required = |k: &str| {
            text(k)
                .unwrap_or_else(|| Err(fail(k, "is missing".into())))
                .and_then(|s| {
                    if s.trim().is_empty() {
                        Err(fail(k, "is empty".into()))
                    } else {
                        Ok(s)
                    }
                })
        };
        let count = |k: &str| -> Result<i64, ParseError> {
            let s = required(k)?;
            s.trim()
                .parse::<i64>()
                .map_err(|_| fail(k, format!("{s:?} is not a whole number")))
        };
        let date = |k: &str| -> Result<NaiveDate, ParseError> {
            let s = required(k)?;
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| fail(k, format!("{s:?} is not a YYYY-MM-DD date")))
        };

        let account = required("account_id")?;
        let account = account.strip_prefix("act_").unwrap_or(&account).to_string();
        let currency = required("account_currency")?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(fail(
                "account_currency",
                format!("{currency:?} is not an ISO 4217 code"),
            ));
        }
        let start = date("date_start")?;
        let stop = date("date_stop")?;
        if start != stop {
            return Err(fail(
                "date_stop",
                format!(
                    "the row covers {start}..{stop}, not one day: time_increment=1 was not honoured"
                ),
            ));
        }
        if start < spec.since || start > spec.until {
            return Err(fail(
                "date_start",
                format!(
                    "{start} is outside the requested {}..{}",
                    spec.since, spec.until
                ),
            ));
        }
        for (j, field) in ids.iter().enumerate() {
            // Ids are required; names may be absent.
            let v = if field.ends_with("_id") {
                Some(required(field)?)
            } else {
                text(field).transpose()?
            };
            cols.ids[j].push(v);
        }
        let spend = required("spend")?;
        cols.spend
            .push(exact_micros(&spend).map_err(|m| fail("spend", m))?);
        cols.impressions.push(count("impressions")?);
        cols.clicks.push(count("clicks")?);
        cols.actions
            .push(action_list(row, "actions", &windows).map_err(|m| fail("actions", m))?);
        cols.action_values.push(
            action_list(row, "action_values", &windows).map_err(|m| fail("action_values", m))?,
        );
        let extra: Map<String, Value> = row
            .iter()
            .filter(|(k, _)| !COMMON.contains(&k.as_str()) && !ids.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        cols.extra
            .push((!extra.is_empty()).then(|| Value::Object(extra).to_string()));
        cols.account.push(account);
        cols.currency.push(currency);
        cols.start.push(epoch_days(start));
        cols.stop.push(epoch_days(stop));
    }
    let frame = cols
        .into_frame(spec.level, &windows.join(","), pulled_at)
        .map_err(|e| err(format!("building the frame: {e}")))?;
    Ok(InsightsPage {
        frame,
        after,
        has_next,
    })
}

/// Checks an `actions` / `action_values` array (objects with an `action_type` and
/// non-negative decimal values under `value` and each window; counts may be fractional, as
/// Meta models some conversions) and returns it as JSON text; `None` when absent.
fn action_list(
    row: &Map<String, Value>,
    key: &str,
    windows: &[&str],
) -> Result<Option<String>, String> {
    let Some(v) = row.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        return Err(format!("{v} is not an array"));
    };
    let mut types = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!("element {} is not an object", i + 1));
        };
        let Some(t) = o.get("action_type").and_then(Value::as_str) else {
            return Err(format!("element {} has no action_type", i + 1));
        };
        if !types.insert(t.to_string()) {
            return Err(format!("action_type {t} appears twice"));
        }
        for k in std::iter::once("value").chain(windows.iter().copied()) {
            if let Some(x) = o.get(k) {
                let s = scalar(x).ok_or_else(|| format!("{t}.{k} is {x}, not a number"))?;
                let parsed = exact_micros(&s).map_err(|m| format!("{t}.{k}: {m}"))?;
                if parsed < 0 {
                    return Err(format!("{t}.{k} is negative ({s})"));
                }
            }
        }
    }
    Ok(Some(v.to_string()))
}

/// Column builders of a level's table (without `dt`, which lives in the path).
struct Cols {
    account: Vec<String>,
    currency: Vec<String>,
    ids: Vec<Vec<Option<String>>>,
    start: Vec<i32>,
    stop: Vec<i32>,
    impressions: Vec<i64>,
    clicks: Vec<i64>,
    spend: Vec<i64>,
    actions: Vec<Option<String>>,
    action_values: Vec<Option<String>>,
    extra: Vec<Option<String>>,
}

impl Cols {
    fn new(id_columns: usize, n: usize) -> Self {
        Cols {
            account: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            ids: vec![Vec::with_capacity(n); id_columns],
            start: Vec::with_capacity(n),
            stop: Vec::with_capacity(n),
            impressions: Vec::with_capacity(n),
            clicks: Vec::with_capacity(n),
            spend: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            action_values: Vec::with_capacity(n),
            extra: Vec::with_capacity(n),
        }
    }

    fn into_frame(
        self,
        level: MetaLevel,
        windows: &str,
        pulled_at: DateTime<Utc>,
    ) -> PolarsResult<DataFrame> {
        let n = self.account.len();
        let mut columns: Vec<Column> = vec![
            Column::new("account_id".into(), self.account),
            Column::new("account_currency".into(), self.currency),
        ];
        for (name, values) in level_fields(level).iter().zip(self.ids) {
            columns.push(Column::new((*name).into(), values));
        }
        columns.extend([
            Series::new("date_start".into(), self.start)
                .into_date()
                .into(),
            Series::new("date_stop".into(), self.stop)
                .into_date()
                .into(),
            Column::new("impressions".into(), self.impressions),
            Column::new("clicks".into(), self.clicks),
            Column::new("spend_micros".into(), self.spend),
            Column::new("actions".into(), self.actions),
            Column::new("action_values".into(), self.action_values),
            Column::new("attribution_windows".into(), vec![windows.to_string(); n]),
            Column::new("extra".into(), self.extra),
            crate::ingest::connector::pulled_at_column(pulled_at, n),
        ]);
        DataFrame::new_infer_height(columns)
    }
}
