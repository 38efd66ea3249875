//! Google Sheets: the team's hand-kept ranges (campaign overrides, manual costs, test devices,
//! FX rates) read with `spreadsheets.values.get` and turned into typed raw frames.
//!
//! The API returns what the sheet *shows* (`FORMATTED_VALUE`): "1,234.50", "₩1,200", "12%",
//! dates in the sheet's locale. People edit these sheets by hand, so the parser is strict
//! about values (an unreadable cell fails the pull, naming the sheet row and column, rather
//! than landing a wrong number) and lenient about layout: header names match
//! case-insensitively, columns may be reordered, unknown columns are kept in `extra`, rows
//! may be ragged (trailing empty cells are omitted by the API) and blank rows are skipped.
//! Every landed row keeps its sheet row number so a person can find it.

pub mod cells;
pub mod connector;

pub use connector::SheetsConnector;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::Deserialize;

use crate::ingest::ParseError;
use cells::{epoch_days, parse_currency, parse_date, parse_money_micros, parse_rate};

/// One of the four ranges the team keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SheetRange {
    CampaignOverrides,
    ManualCosts,
    TestDevices,
    FxRates,
}

impl SheetRange {
    pub const ALL: [SheetRange; 4] = [
        SheetRange::CampaignOverrides,
        SheetRange::ManualCosts,
        SheetRange::TestDevices,
        SheetRange::FxRates,
    ];

    /// The key under `[sources.google_sheets.ranges]` and the default tab name.
    pub fn name(self) -> &'static str {
        match self {
            SheetRange::CampaignOverrides => "campaign_overrides",
            SheetRange::ManualCosts => "manual_costs",
            SheetRange::TestDevices => "test_devices",
            SheetRange::FxRates => "fx_rates",
        }
    }

    /// The raw table the range lands in.
    pub fn table(self) -> &'static str {
        match self {
            SheetRange::CampaignOverrides => "raw.sheets_campaign_overrides",
            SheetRange::ManualCosts => "raw.sheets_manual_costs",
            SheetRange::TestDevices => "raw.sheets_test_devices",
            SheetRange::FxRates => "raw.sheets_fx_rates",
        }
    }

    /// Stream name in errors and logs, e.g. `google_sheets.fx_rates`.
    pub fn stream(self) -> String {
        format!("google_sheets.{}", self.name())
    }

    /// The configured A1 range of this tab.
    pub fn a1_range(self, ranges: &crate::config::SheetRanges) -> &str {
        match self {
            SheetRange::CampaignOverrides => &ranges.campaign_overrides,
            SheetRange::ManualCosts => &ranges.manual_costs,
            SheetRange::TestDevices => &ranges.test_devices,
            SheetRange::FxRates => &ranges.fx_rates,
        }
    }

    /// The header cells in the order the team's sheet has them (the renderer writes this).
    pub fn headers(self) -> Vec<&'static str> {
        self.spec().iter().map(|c| c.header).collect()
    }

    fn spec(self) -> &'static [ColSpec] {
        match self {
            SheetRange::CampaignOverrides => OVERRIDES,
            SheetRange::ManualCosts => MANUAL_COSTS,
            SheetRange::TestDevices => TEST_DEVICES,
            SheetRange::FxRates => FX_RATES,
        }
    }
}

const fn c(
    header: &'static str,
    column: &'static str,
    kind: Kind,
    header_required: bool,
    value_required: bool,
) -> ColSpec {
    ColSpec {
        header,
        column,
        kind,
        header_required,
        value_required,
    }
}

const OVERRIDES: &[ColSpec] = &[
    c("channel", "channel", Kind::Text, true, true),
    c(
        "channel_campaign_id",
        "channel_campaign_id",
        Kind::Text,
        true,
        true,
    ),
    c(
        "attribution_campaign_id",
        "attribution_campaign_id",
        Kind::Text,
        true,
        false,
    ),
    c("campaign_name", "campaign_name", Kind::Text, true, false),
    c("note", "note", Kind::Text, false, false),
];

const MANUAL_COSTS: &[ColSpec] = &[
    c("date", "date", Kind::Date, true, true),
    c("channel", "channel", Kind::Text, true, true),
    c("campaign_id", "campaign_id", Kind::Text, true, true),
    c("cost", "cost_micros", Kind::Money, true, true),
    c("currency", "currency", Kind::Currency, true, true),
    c("note", "note", Kind::Text, false, false),
];

const TEST_DEVICES: &[ColSpec] = &[
    c("advertising_id", "advertising_id", Kind::Text, true, true),
    c("label", "label", Kind::Text, true, false),
    c("platform", "platform", Kind::Text, true, false),
];

const FX_RATES: &[ColSpec] = &[
    c("date", "date", Kind::Date, true, true),
    c("currency", "currency", Kind::Currency, true, true),
    c("usd_per_unit", "usd_per_unit", Kind::Rate, true, true),
];

/// How a column's cells are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Trimmed text; blank is null.
    Text,
    /// `date`: ISO or the Korean locale's "YYYY. M. D".
    Date,
    /// Integer micros; a currency symbol in the cell may fill a blank currency cell.
    Money,
    /// ISO 4217 code, upper-cased.
    Currency,
    /// `float64`; "12%" is 0.12.
    Rate,
}

#[derive(Debug)]
struct ColSpec {
    /// Header text in the sheet (matched trimmed and case-insensitively).
    header: &'static str,
    /// Column of the raw table.
    column: &'static str,
    kind: Kind,
    /// A sheet without this header fails: the column's meaning would be guessed otherwise.
    header_required: bool,
    /// A row with this cell blank fails: the row means nothing without it.
    value_required: bool,
}

/// One parsed column.
enum Buf {
    Text(Vec<Option<String>>),
    Date(Vec<Option<i32>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
}

/// The `ValueRange` body of `values.get`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValueRange {
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    major_dimension: Option<String>,
    /// Absent when the range is empty.
    #[serde(default)]
    values: Option<Vec<Vec<serde_json::Value>>>,
}

/// Column letters of a 0-based index: 0 → A, 26 → AA.
pub fn column_letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// The 0-based column and 1-based row of the top-left cell of an A1 range such as
/// `'My tab'!B3:F` (row 1 when the range names whole columns, column A when whole rows).
pub fn a1_start(range: &str) -> (usize, u64) {
    let cells = range.rsplit_once('!').map_or(range, |(_, c)| c);
    let first = cells.split(':').next().unwrap_or("");
    let letters: String = first
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let digits: String = first[letters.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if letters.len() > 3 || letters.len() + digits.len() != first.len() {
        // Not a cell reference (a bare tab name): the range starts at A1.
        return (0, 1);
    }
    let col = letters
        .to_ascii_uppercase()
        .bytes()
        .fold(0usize, |acc, b| acc * 26 + usize::from(b - b'A' + 1))
        .saturating_sub(1);
    (col, digits.parse().unwrap_or(1).max(1))
}

fn cell_text(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Null => Ok(String::new()),
        // UNFORMATTED_VALUE sends numbers and booleans as JSON; read them the same way.
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_string()),
        other => Err(format!(
            "a cell must be a string, number or boolean, not {other}"
        )),
    }
}

/// Parses a `values.get` body into the range's raw frame (without `dt`: the lake keeps it in
/// the path). Formatted numbers are parsed to typed values: money to int64 micros (exact
/// decimal), rates to float64; dates in "YYYY-MM-DD" or "YYYY. M. D" form. An unparseable
/// cell is an error naming the sheet row and column; `partition` only labels errors.
pub fn parse_values(
    body: &[u8],
    range: SheetRange,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<DataFrame, ParseError> {
    let stream = range.stream();
    let err = |msg: String| ParseError::new(&stream, partition, msg);
    let vr: ValueRange = serde_json::from_slice(body).map_err(|e| {
        let pe = err(format!("not a values.get response: {e}"));
        // A body cut short in transit ends mid-document: pulling again may succeed.
        if e.is_eof() { pe.truncated() } else { pe }
    })?;
    if let Some(dim) = &vr.major_dimension
        && dim != "ROWS"
    {
        return Err(err(format!(
            "majorDimension is {dim}; the pipeline requests ROWS"
        )));
    }
    let (first_col, header_row) = vr.range.as_deref().map_or((0, 1), a1_start);
    let values = vr.values.unwrap_or_default();
    let spec = range.spec();

    // Header: which sheet column holds each spec column; the rest go to `extra`.
    let mut positions: Vec<Option<usize>> = vec![None; spec.len()];
    let mut extra_names: HashMap<usize, String> = HashMap::new();
    if let Some(header) = values.first() {
        for (i, cell) in header.iter().enumerate() {
            let letter = column_letters(first_col + i);
            let name = cell_text(cell)
                .map_err(|m| err(m).at_row(header_row).in_column(&letter))?
                .trim()
                .to_string();
            let key = name.to_lowercase();
            match spec.iter().position(|c| c.header == key) {
                Some(p) if positions[p].is_some() => {
                    return Err(err(format!(
                        "header {name:?} appears twice (cell {letter}{header_row})"
                    ))
                    .at_row(header_row)
                    .in_column(spec[p].header));
                }
                Some(p) => positions[p] = Some(i),
                None if name.is_empty() => {
                    extra_names.insert(i, letter);
                }
                None => {
                    extra_names.insert(i, name);
                }
            }
        }
        for (c, pos) in spec.iter().zip(&positions) {
            if pos.is_none() && c.header_required {
                return Err(err(format!(
                    "the header row has no {:?} column (found: {})",
                    c.header,
                    header
                        .iter()
                        .filter_map(|v| cell_text(v).ok())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .at_row(header_row)
                .in_column(c.header));
            }
        }
    }

    let data = values.get(1..).unwrap_or_default();
    let mut bufs: Vec<Buf> = spec
        .iter()
        .map(|c| match c.kind {
            Kind::Text | Kind::Currency => Buf::Text(Vec::with_capacity(data.len())),
            Kind::Date => Buf::Date(Vec::with_capacity(data.len())),
            Kind::Money => Buf::Int(Vec::with_capacity(data.len())),
            Kind::Rate => Buf::Float(Vec::with_capacity(data.len())),
        })
        .collect();
    let mut rows: Vec<u64> = Vec::with_capacity(data.len());
    let mut extras: Vec<Option<String>> = Vec::with_capacity(data.len());

    for (i, raw_row) in data.iter().enumerate() {
        let sheet_row = header_row + 1 + i as u64;
        let texts: Vec<String> = raw_row
            .iter()
            .enumerate()
            .map(|(j, v)| {
                cell_text(v).map_err(|m| {
                    err(m)
                        .at_row(sheet_row)
                        .in_column(&column_letters(first_col + j))
                })
            })
            .collect::<Result<_, _>>()?;
        // Blank rows separate blocks in hand-kept sheets; they hold no data.
        if texts.iter().all(|t| t.trim().is_empty()) {
            continue;
        }
        rows.push(sheet_row);

        let mut symbol_currency: Option<&'static str> = None;
        for ((c, pos), buf) in spec.iter().zip(&positions).zip(bufs.iter_mut()) {
            let cell = pos
                .and_then(|p| texts.get(p))
                .map(|t| t.trim())
                .filter(|t| !t.is_empty());
            let letter = pos
                .map(|p| column_letters(first_col + p))
                .unwrap_or_default();
            let fail = |m: String| {
                err(format!("cell {letter}{sheet_row}: {m}"))
                    .at_row(sheet_row)
                    .in_column(c.header)
            };
            let cell = match cell {
                Some(s) => Some(s),
                None if c.kind == Kind::Currency && symbol_currency.is_some() => symbol_currency,
                None if c.value_required => return Err(fail("is empty".into())),
                None => None,
            };
            match buf {
                Buf::Text(v) => v.push(match (cell, c.kind) {
                    (Some(s), Kind::Currency) => {
                        let code = parse_currency(s).map_err(&fail)?;
                        if let Some(sym) = symbol_currency
                            && sym != code
                        {
                            return Err(fail(format!(
                                "currency {code} contradicts the amount's symbol ({sym})"
                            )));
                        }
                        Some(code)
                    }
                    (s, _) => s.map(str::to_string),
                }),
                Buf::Date(v) => v.push(
                    cell.map(|s| parse_date(s).map(epoch_days))
                        .transpose()
                        .map_err(&fail)?,
                ),
                Buf::Int(v) => v.push(
                    cell.map(|s| {
                        parse_money_micros(s).map(|(m, sym)| {
                            symbol_currency = sym;
                            m
                        })
                    })
                    .transpose()
                    .map_err(&fail)?,
                ),
                Buf::Float(v) => v.push(cell.map(parse_rate).transpose().map_err(&fail)?),
            }
        }

        let mut extra = serde_json::Map::new();
        for (j, t) in texts.iter().enumerate() {
            let t = t.trim();
            if t.is_empty() || positions.contains(&Some(j)) {
                continue;
            }
            let key = extra_names
                .get(&j)
                .cloned()
                .unwrap_or_else(|| column_letters(first_col + j));
            extra.insert(key, serde_json::Value::String(t.to_string()));
        }
        extras.push((!extra.is_empty()).then(|| serde_json::Value::Object(extra).to_string()));
    }

    let n = rows.len();
    let mut columns: Vec<Column> = Vec::with_capacity(spec.len() + 3);
    columns.push(Column::new("row".into(), rows));
    for (c, buf) in spec.iter().zip(bufs) {
        let name: PlSmallStr = c.column.into();
        columns.push(match buf {
            Buf::Text(v) => Column::new(name, v),
            Buf::Date(v) => Series::new(name, v).into_date().into(),
            Buf::Int(v) => Column::new(name, v),
            Buf::Float(v) => Column::new(name, v),
        });
    }
    columns.push(Column::new("extra".into(), extras));
    columns.push(crate::ingest::connector::pulled_at_column(pulled_at, n));
    DataFrame::new_infer_height(columns).map_err(|e| err(format!("building the frame: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
