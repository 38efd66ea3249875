//! The world's hand-kept sheets as Google Sheets `values.get` bodies, so the sheets
//! connector can be exercised against the simulated world exactly as against the real API:
//! formatted strings, trailing empty cells and rows omitted, `values` absent when the range
//! is empty, and the requested range echoed back.

use polars::prelude::*;

use crate::ingest::sheets::{SheetRange, a1_start, cells::format_micros_grouped};
use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// Why the world's sheet could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum SheetServeError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the world's {table}: {source}")]
    Polars {
        table: String,
        #[source]
        source: PolarsError,
    },
    #[error("rendering the values.get body: {0}")]
    Json(#[from] serde_json::Error),
}

/// How many of the world's campaigns the overrides sheet maps to themselves; one more gets
/// the name-typo row.
const SELF_MAPPED: usize = 3;

async fn read(lake: &Lake, table: &str, sort: &[&str]) -> Result<DataFrame, SheetServeError> {
    let schema = Registry::embedded()?.get(table)?;
    let mut lf = lake.scan(schema, DateRange::all()).await?;
    if !sort.is_empty() {
        lf = lf.sort(
            sort.iter()
                .map(|s| PlSmallStr::from(*s))
                .collect::<Vec<_>>(),
            SortMultipleOptions::default().with_maintain_order(true),
        );
    }
    lf.collect().map_err(|source| SheetServeError::Polars {
        table: table.to_string(),
        source,
    })
}

fn polars_err(table: &str) -> impl Fn(PolarsError) -> SheetServeError + '_ {
    move |source| SheetServeError::Polars {
        table: table.to_string(),
        source,
    }
}

/// The values of a string column (nulls as empty cells).
fn strings(df: &DataFrame, name: &str, table: &str) -> Result<Vec<String>, SheetServeError> {
    let c = df.column(name).map_err(polars_err(table))?;
    Ok(c.str()
        .map_err(polars_err(table))?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// A date the way a Korean-locale sheet shows it: "2026. 1. 3".
fn korean_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}. {}. {}", d.year(), d.month(), d.day())
}

/// The full grid of a tab, header first, as the team keeps it.
async fn grid(lake: &Lake, range: SheetRange) -> Result<Vec<Vec<String>>, SheetServeError> {
    let mut rows: Vec<Vec<String>> = vec![range.headers().iter().map(|h| h.to_string()).collect()];
    match range {
        SheetRange::TestDevices => {
            let t = "sim.test_devices";
            let df = read(lake, t, &[]).await?;
            let ids = strings(&df, "advertising_id", t)?;
            let labels = strings(&df, "label", t)?;
            let platforms = strings(&df, "platform", t)?;
            for ((a, l), p) in ids.into_iter().zip(labels).zip(platforms) {
                rows.push(vec![a, l, p]);
            }
        }
        SheetRange::FxRates => {
            let t = "sim.fx_rates";
            let df = read(lake, t, &["dt", "currency"]).await?;
            let dates = df
                .column("dt")
                .and_then(|c| c.date().cloned())
                .map_err(polars_err(t))?;
            let currencies = strings(&df, "currency", t)?;
            let rates = df
                .column("usd_per_unit")
                .and_then(|c| c.f64().cloned())
                .map_err(polars_err(t))?;
            for ((d, c), r) in dates.physical().iter().zip(currencies).zip(rates.iter()) {
                let day = d
                    .and_then(|d| {
                        chrono::NaiveDate::default()
                            .checked_add_signed(chrono::TimeDelta::days(d.into()))
                    })
                    .map(korean_date)
                    .unwrap_or_default();
                // Shortest text that reads back as the same double: the sheet keeps the full
                // rate, and the round trip must be exact.
                rows.push(vec![day, c, r.map(|r| format!("{r}")).unwrap_or_default()]);
            }
        }
        SheetRange::CampaignOverrides => {
            let t = "sim.campaigns";
            let df = read(lake, t, &["channel", "campaign_id"]).await?;
            let channels = strings(&df, "channel", t)?;
            let ids = strings(&df, "campaign_id", t)?;
            let names = strings(&df, "campaign_name", t)?;
            let tests = df
                .column("is_test")
                .and_then(|c| c.bool().cloned())
                .map_err(polars_err(t))?;
            let mut seen = std::collections::HashSet::new();
            let mut picked = Vec::new();
            for (((ch, id), name), test) in
                channels.into_iter().zip(ids).zip(names).zip(tests.iter())
            {
                if test != Some(true) && seen.insert(id.clone()) {
                    picked.push((ch, id, name));
                }
            }
            for (i, (ch, id, name)) in picked.into_iter().take(SELF_MAPPED + 1).enumerate() {
                if i < SELF_MAPPED {
                    // The team confirmed these ids agree between the channel and AppsFlyer.
                    rows.push(vec![
                        ch,
                        id.clone(),
                        id,
                        String::new(),
                        "checked: AppsFlyer uses the channel's id".to_string(),
                    ]);
                } else {
                    rows.push(vec![
                        ch,
                        id.clone(),
                        id,
                        name.clone(),
                        format!("name typo fix: was {:?}", typo(&name)),
                    ]);
                }
            }
        }
        // The world has no channel without an API: the sheet holds only its header.
        SheetRange::ManualCosts => {}
    }
    Ok(rows)
}

/// A deterministic misspelling (the second character dropped) for the typo-fix row.
fn typo(name: &str) -> String {
    name.chars()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, c)| c)
        .collect()
}

/// The window an A1 range selects: 0-based first column and 1-based first row, and the
/// inclusive last column and row when the range bounds them.
fn a1_window(a1: &str) -> (usize, u64, Option<usize>, Option<u64>) {
    let (col, row) = a1_start(a1);
    let cells = a1.rsplit_once('!').map_or(a1, |(_, c)| c);
    let (end_col, end_row) = match cells.split_once(':') {
        Some((_, end)) => {
            let (c, r) = a1_start(&format!("x!{end}"));
            let has_letters = end.starts_with(|ch: char| ch.is_ascii_alphabetic());
            let has_digits = end.ends_with(|ch: char| ch.is_ascii_digit());
            (has_letters.then_some(c), has_digits.then_some(r))
        }
        None => (None, None),
    };
    (col, row, end_col, end_row)
}

/// Formats money for a sheet cell with its symbol, as a Korean team's sheet shows it.
pub fn money_cell(micros: i64, currency: &str) -> String {
    let n = format_micros_grouped(micros);
    match currency {
        "KRW" => format!("₩{n}"),
        "USD" => format!("${n}"),
        "JPY" => format!("¥{n}"),
        other => format!("{n} {other}"),
    }
}

/// The world's `range` tab as the `values.get` body for `a1_range` (e.g. `fx_rates!A1:C`):
/// the window the range selects, trailing empty cells and rows omitted, `values` absent
/// when nothing is left.
pub async fn render_values(
    lake: &Lake,
    range: SheetRange,
    a1_range: &str,
) -> Result<Vec<u8>, SheetServeError> {
    let grid = grid(lake, range).await?;
    let (c0, r0, c1, r1) = a1_window(a1_range);
    let mut values: Vec<Vec<String>> = grid
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let r = *i as u64 + 1;
            r >= r0 && r1.is_none_or(|end| r <= end)
        })
        .map(|(_, row)| {
            let mut cells: Vec<String> = row
                .into_iter()
                .enumerate()
                .filter(|(j, _)| *j >= c0 && c1.is_none_or(|end| *j <= end))
                .map(|(_, c)| c)
                .collect();
            while cells.last().is_some_and(|c| c.is_empty()) {
                cells.pop();
            }
            cells
        })
        .collect();
    while values.last().is_some_and(|r| r.is_empty()) {
        values.pop();
    }
    let range_text = if a1_range.contains('!') {
        a1_range.to_string()
    } else {
        format!("{}!{a1_range}", range.name())
    };
    let mut body = serde_json::json!({ "range": range_text, "majorDimension": "ROWS" });
    if !values.is_empty() {
        body["values"] = serde_json::json!(values);
    }
    Ok(serde_json::to_vec(&body)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_a1_notation() {
        assert_eq!(a1_window("fx_rates!A1:C"), (0, 1, Some(2), None));
        assert_eq!(a1_window("'my tab'!B2:D10"), (1, 2, Some(3), Some(10)));
        assert_eq!(a1_window("fx_rates"), (0, 1, None, None));
    }

    #[test]
    fn money_cells_read_back_exactly() {
        let (m, c) =
            crate::ingest::sheets::cells::parse_money_micros(&money_cell(1_234_500_000, "KRW"))
                .unwrap();
        assert_eq!((m, c), (1_234_500_000, Some("KRW")));
        assert_eq!(typo("summer_event"), "smmer_event");
    }
}
