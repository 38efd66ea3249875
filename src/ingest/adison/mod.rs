//! Adison: the Korean reward-ad network has no reporting API, so the team drops one CSV
//! report per day into object storage (`adison.drop_url`, `adison_{date}.csv`). This module
//! turns one such file into the `raw.adison_report` frame.
//!
//! The format is ours to define, shaped like a Korean network's spreadsheet export: UTF-8 with
//! a BOM (so Excel opens the Hangul names), CRLF or LF lines, header
//! `date,campaign_id,campaign_name,ad_id,ad_name,impressions,clicks,installs,spend,currency`,
//! dates `YYYY-MM-DD` in Asia/Seoul, and spend in KRW with thousands separators, quoted
//! (`"1,234,000"`). Spend is parsed exactly into integer micros. Files are written by people
//! and tools we do not control, so any unreadable cell fails the whole file, naming the data
//! row and column: landing a partial day would understate spend silently.

mod connector;

pub use connector::{AdisonConnector, SIM_DROP_PREFIX};

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use polars::prelude::*;

use crate::ingest::ParseError;
use crate::ingest::sheets::cells::{
    epoch_days, parse_count, parse_currency, parse_date, parse_money_micros,
};

/// Stream name in errors and logs.
pub const STREAM: &str = "adison.report";

/// The raw table the report lands in.
pub const TABLE: &str = "raw.adison_report";

/// The header of the file, in the order the renderer writes it.
pub const HEADER: [&str; 10] = [
    "date",
    "campaign_id",
    "campaign_name",
    "ad_id",
    "ad_name",
    "impressions",
    "clicks",
    "installs",
    "spend",
    "currency",
];

/// Splits a CSV text into records (RFC 4180: quoted fields may hold commas, doubled quotes
/// and line breaks). Returns the records with the 1-based line each starts on, or the line
/// of an unterminated quote.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, usize> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut quote_line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                quote_line = line;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut record)));
                line += 1;
                start_line = line;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(quote_line);
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((start_line, record));
    }
    Ok(records)
}

/// Parses one dropped report file into the `raw.adison_report` frame (without `dt`: the lake
/// keeps it in the path). `file_name` lands in `source_file`; `partition` only labels errors.
/// Rows are numbered from 1 after the header, as [`ParseError`] documents.
pub fn parse_report(
    body: &[u8],
    file_name: &str,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<DataFrame, ParseError> {
    let err = |msg: String| ParseError::new(STREAM, partition, msg);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|e| {
        err(format!(
            "{file_name} is not UTF-8 ({e}); Korean exports are sometimes CP949, ask for UTF-8"
        ))
    })?;
    let records = csv_records(text).map_err(|line| {
        // The quote never closes: the file was cut short while being dropped or read.
        err(format!(
            "{file_name}: a quoted field opened on line {line} never closes"
        ))
        .truncated()
    })?;
    let mut records = records
        .into_iter()
        .filter(|(_, r)| r.iter().any(|f| !f.trim().is_empty()));
    let Some((_, header)) = records.next() else {
        return Err(err(format!("{file_name} is empty: not even a header")));
    };

    let mut positions: HashMap<&'static str, usize> = HashMap::new();
    let mut extra_names: HashMap<usize, String> = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let name = h.trim().trim_start_matches('\u{feff}').to_string();
        let key = name.to_lowercase();
        match HEADER.iter().find(|k| **k == key) {
            Some(k) if positions.contains_key(k) => {
                return Err(err(format!("{file_name}: header {name:?} appears twice")).in_column(k));
            }
            Some(k) => {
                positions.insert(k, i);
            }
            None => {
                extra_names.insert(
                    i,
                    if name.is_empty() {
                        format!("_{}", i + 1)
                    } else {
                        name
                    },
                );
            }
        }
    }
    for k in HEADER {
        if !positions.contains_key(k) {
            return Err(err(format!(
                "{file_name}: the header has no {k:?} column (found: {})",
                header.join(",")
            ))
            .in_column(k));
        }
    }

    let mut dates = Vec::new();
    let mut campaign_ids = Vec::new();
    let mut campaign_names: Vec<Option<String>> = Vec::new();
    let mut ad_ids = Vec::new();
    let mut ad_names: Vec<Option<String>> = Vec::new();
    let mut impressions = Vec::new();
    let mut clicks = Vec::new();
    let mut installs = Vec::new();
    let mut spend = Vec::new();
    let mut currencies = Vec::new();
    let mut extras: Vec<Option<String>> = Vec::new();
    let mut seen_ads: HashSet<String> = HashSet::new();

    for (n, (line, rec)) in records.enumerate() {
        let row = n as u64 + 1;
        let fail = |column: &str, m: String| {
            err(format!("{file_name} line {line}: {m}"))
                .at_row(row)
                .in_column(column)
        };
        let cell = |k: &'static str| -> Option<&str> {
            positions
                .get(k)
                .and_then(|p| rec.get(*p))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let required = |k: &'static str| cell(k).ok_or_else(|| fail(k, "is empty".into()));

        dates.push(epoch_days(
            parse_date(required("date")?).map_err(|m| fail("date", m))?,
        ));
        campaign_ids.push(required("campaign_id")?.to_string());
        campaign_names.push(cell("campaign_name").map(str::to_string));
        let ad = required("ad_id")?.to_string();
        if !seen_ads.insert(ad.clone()) {
            return Err(fail("ad_id", format!("ad {ad} appears twice in the file")));
        }
        ad_ids.push(ad);
        ad_names.push(cell("ad_name").map(str::to_string));
        for (k, out) in [
            ("impressions", &mut impressions),
            ("clicks", &mut clicks),
            ("installs", &mut installs),
        ] {
            out.push(parse_count(required(k)?).map_err(|m| fail(k, m))?);
        }
        let (micros, symbol) =
            parse_money_micros(required("spend")?).map_err(|m| fail("spend", m))?;
        spend.push(micros);
        let currency = match (cell("currency"), symbol) {
            (Some(c), sym) => {
                let code = parse_currency(c).map_err(|m| fail("currency", m))?;
                if let Some(sym) = sym
                    && sym != code
                {
                    return Err(fail(
                        "currency",
                        format!("currency {code} contradicts the spend's symbol ({sym})"),
                    ));
                }
                code
            }
            (None, Some(sym)) => sym.to_string(),
            (None, None) => return Err(fail("currency", "is empty".into())),
        };
        currencies.push(currency);

        let mut extra = serde_json::Map::new();
        for (j, v) in rec.iter().enumerate() {
            let v = v.trim();
            if v.is_empty() || positions.values().any(|p| *p == j) {
                continue;
            }
            let key = extra_names
                .get(&j)
                .cloned()
                .unwrap_or_else(|| format!("_{}", j + 1));
            extra.insert(key, serde_json::Value::String(v.to_string()));
        }
        extras.push((!extra.is_empty()).then(|| serde_json::Value::Object(extra).to_string()));
    }

    let n = dates.len();
    let columns = vec![
        Series::new("date".into(), dates).into_date().into(),
        Column::new("campaign_id".into(), campaign_ids),
        Column::new("campaign_name".into(), campaign_names),
        Column::new("ad_id".into(), ad_ids),
        Column::new("ad_name".into(), ad_names),
        Column::new("impressions".into(), impressions),
        Column::new("clicks".into(), clicks),
        Column::new("installs".into(), installs),
        Column::new("spend_micros".into(), spend),
        Column::new("currency".into(), currencies),
        Column::new("extra".into(), extras),
        Column::new("source_file".into(), vec![file_name.to_string(); n]),
        crate::ingest::connector::pulled_at_column(pulled_at, n),
    ];
    DataFrame::new_infer_height(columns).map_err(|e| err(format!("building the frame: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
