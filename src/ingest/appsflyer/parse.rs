//! Parsing a Pull API raw-data CSV body into a frame of the report's raw schema.
//!
//! Every field is read as text (no inference: an id that looks numeric must stay text),
//! the header is checked against the documented columns, and only then are values cast
//! with Polars expressions. A non-empty value that fails to cast is an error naming its
//! row and column: the raw layer is lossless, and quarantining is the cleanse stage's job.

use std::io::Cursor;

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::Report;
use super::columns::{self, APP_ID, Column, EXTRA, Kind, PULLED_AT, USD};
use crate::ingest::ParseError;

/// The wire format of every time field.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Field counts of each CSV record (header first), read quote-aware so that quoted commas
/// and newlines do not split fields or records; `complete` is false when the body ends
/// inside a quoted field.
struct Records {
    fields: Vec<usize>,
    complete: bool,
}

fn scan_records(body: &[u8]) -> Records {
    let mut fields = Vec::new();
    let mut in_quotes = false;
    let mut count = 1usize;
    let mut line_has_data = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_quotes {
            if b == b'"' {
                if body.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else {
            match b {
                b'"' => {
                    in_quotes = true;
                    line_has_data = true;
                }
                b',' => {
                    count += 1;
                    line_has_data = true;
                }
                b'\n' => {
                    if line_has_data {
                        fields.push(count);
                    }
                    count = 1;
                    line_has_data = false;
                }
                b'\r' => {}
                _ => line_has_data = true,
            }
        }
        i += 1;
    }
    if line_has_data {
        fields.push(count);
    }
    Records {
        fields,
        complete: !in_quotes,
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(UTF8_BOM).unwrap_or(body)
}

/// Data rows in a body (records after the header; blank lines do not count). The connector
/// compares this with `maximum_rows`: exactly that many rows means the report was cut off.
pub fn count_rows(body: &[u8]) -> usize {
    scan_records(strip_bom(body)).fields.len().saturating_sub(1)
}

pub use crate::ingest::money::exact_micros as decimal_to_micros;

/// The typed expression for one wire column, read from its raw header.
fn cast_expr(c: &Column, zone: &str) -> PolarsResult<Expr> {
    let raw = col(c.raw);
    Ok(match c.kind {
        Kind::Text => raw,
        Kind::Time => raw
            .str()
            .strptime(
                DataType::Datetime(TimeUnit::Milliseconds, None),
                StrptimeOptions {
                    format: Some(TIME_FORMAT.into()),
                    strict: false,
                    exact: true,
                    cache: true,
                },
                lit("raise"),
            )
            // A wall time that does not exist in the zone (spring forward) becomes null
            // and is reported; a repeated one (fall back) takes its first occurrence.
            .dt()
            .replace_time_zone(
                TimeZone::opt_try_new(Some(zone))?,
                lit("earliest"),
                NonExistent::Null,
            )
            .dt()
            .convert_time_zone(TimeZone::UTC),
        Kind::Bool => {
            let lower = raw.str().to_lowercase();
            when(lower.clone().eq(lit("true")))
                .then(lit(true))
                .when(lower.eq(lit("false")))
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean))
        }
        // Money is parsed exactly in Rust after the frame is read (see `money_column`).
        Kind::Money { .. } => raw,
    }
    .alias(c.name))
}

/// Parses a money column's text into micros; the error carries the 0-based row.
fn money_column(strings: &Column0, name: &str) -> Result<Series, (usize, String)> {
    let ca = strings.str().map_err(|e| (0, e.to_string()))?;
    let mut out: Vec<Option<i64>> = Vec::with_capacity(ca.len());
    for (i, v) in ca.iter().enumerate() {
        out.push(match v {
            None => None,
            Some("") => None,
            Some(s) => Some(decimal_to_micros(s).map_err(|m| (i, m))?),
        });
    }
    Ok(Series::new(name.into(), out))
}

type Column0 = polars::prelude::Column;

/// Parses a Pull API CSV body into a frame matching the report's raw schema (without the
/// `dt` partition column, which the lake keeps in the path). `zone` is the time zone the
/// request named; times land in UTC. `partition` labels errors (e.g. `dt=2026-01-03`).
pub fn parse_report(
    body: &[u8],
    report: Report,
    app_id: &str,
    zone: chrono_tz::Tz,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<DataFrame, ParseError> {
    let stream = report.stream();
    let err = |msg: String| ParseError::new(&stream, partition, msg);
    let body = strip_bom(body);

    let records = scan_records(body);
    let Some(&header_fields) = records.fields.first() else {
        return Err(err("empty body: no header row".into()).truncated());
    };
    if !records.complete {
        return Err(err("body ends inside a quoted field".into()).truncated());
    }
    // AppsFlyer ends every record, the header too, with a newline: a body that does not was
    // cut in transit, even when the cut fell inside the header.
    if !body.ends_with(b"\n") {
        return Err(err("body does not end with a newline: cut short".into()).truncated());
    }
    let last = records.fields.len() - 1;
    for (i, &n) in records.fields.iter().enumerate().skip(1) {
        if n != header_fields {
            let e = err(format!("{n} fields, but the header has {header_fields}")).at_row(i as u64);
            // A short last record in a body without its final newline was cut in transit.
            return Err(
                if i == last && n < header_fields && !body.ends_with(b"\n") {
                    e.truncated()
                } else {
                    e
                },
            );
        }
    }

    let polars_err = |e: PolarsError| err(format!("reading the CSV: {e}"));
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .into_reader_with_file_handle(Cursor::new(body))
        .finish()
        .map_err(polars_err)?;

    let documented: Vec<&Column> = columns::wire_columns(report).collect();
    for c in &documented {
        if df.column(c.raw).is_err() {
            return Err(err(format!(
                "the header lacks the documented column {:?}",
                c.raw
            ))
            .in_column(c.raw));
        }
    }
    let extras: Vec<String> = df
        .get_column_names()
        .into_iter()
        .filter(|n| !documented.iter().any(|c| c.raw == n.as_str()))
        .map(|n| n.to_string())
        .collect();
    let extra = extra_json(&df, &extras).map_err(polars_err)?;

    let zone_name = zone.name();
    let mut exprs = Vec::with_capacity(documented.len() + 4);
    for c in &documented {
        let mut e = cast_expr(c, zone_name).map_err(polars_err)?;
        if columns::empty_is_blank(c.name) {
            e = e.fill_null(lit(""));
        }
        exprs.push(e);
    }
    let pulled_ms = pulled_at.timestamp_millis();
    exprs.push(lit(app_id).alias(APP_ID));
    exprs.push(
        lit(pulled_ms)
            .cast(DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .alias(PULLED_AT),
    );
    exprs.push(lit("USD").alias(USD));
    let mut typed = df
        .clone()
        .lazy()
        .select(exprs)
        .collect()
        .map_err(polars_err)?;
    typed.with_column(extra.into_column()).map_err(polars_err)?;

    // The first bad value in row order (then column order), so the message points at the
    // earliest line a person should look at.
    let mut first: Option<(usize, usize, String)> = None;
    let mut note = |row: usize, idx: usize, msg: String| {
        if first.as_ref().is_none_or(|(r, i, _)| (row, idx) < (*r, *i)) {
            first = Some((row, idx, msg));
        }
    };
    for (idx, c) in documented.iter().enumerate() {
        let raw = df.column(c.raw).map_err(polars_err)?;
        let raw_ca = raw.str().map_err(polars_err)?;
        if !columns::nullable(report, c.name)
            && !columns::empty_is_blank(c.name)
            && let Some(row) = raw_ca.iter().position(|v| v.is_none_or(str::is_empty))
        {
            note(row, idx, "empty value in a key column".into());
        }
        match c.kind {
            Kind::Text => {}
            Kind::Money { .. } => match money_column(raw, c.name) {
                Ok(s) => {
                    typed.with_column(s.into_column()).map_err(polars_err)?;
                }
                Err((row, msg)) => note(row, idx, msg),
            },
            Kind::Time | Kind::Bool => {
                let cast = typed.column(c.name).map_err(polars_err)?;
                let bad = raw_ca
                    .iter()
                    .zip(cast.is_null().iter())
                    .position(|(v, null)| v.is_some_and(|s| !s.is_empty()) && null == Some(true));
                if let Some(row) = bad {
                    let value = raw_ca.get(row).unwrap_or_default();
                    let want = if c.kind == Kind::Time {
                        format!("a time YYYY-MM-DD HH:MM:SS that exists in {zone_name}")
                    } else {
                        "true or false".to_string()
                    };
                    note(row, idx, format!("{value:?} is not {want}"));
                }
            }
        }
    }
    if let Some((row, idx, msg)) = first {
        return Err(err(msg)
            .at_row(row as u64 + 1)
            .in_column(documented[idx].raw));
    }
    Ok(typed)
}

/// One JSON object per row of the columns the documented list lacks (header to value,
/// empty fields as null); all null when there are none.
fn extra_json(df: &DataFrame, extras: &[String]) -> PolarsResult<Series> {
    let height = df.height();
    if extras.is_empty() {
        return Ok(Series::full_null(EXTRA.into(), height, &DataType::String));
    }
    let cols = extras
        .iter()
        .map(|n| df.column(n).and_then(|c| c.str().cloned()))
        .collect::<PolarsResult<Vec<_>>>()?;
    let rows: Vec<Option<String>> = (0..height)
        .map(|i| {
            let mut obj = serde_json::Map::new();
            for (name, ca) in extras.iter().zip(&cols) {
                let v = ca.get(i).filter(|s| !s.is_empty());
                obj.insert(
                    name.clone(),
                    v.map_or(serde_json::Value::Null, |s| s.into()),
                );
            }
            Some(serde_json::Value::Object(obj).to_string())
        })
        .collect();
    Ok(Series::new(EXTRA.into(), rows))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::schema::Registry;
    use crate::test_support::strs;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_support::fixture("appsflyer", &format!("{name}.csv"))
    }

    fn pulled() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 4, 1, 0, 0).unwrap()
    }

    fn parse(name: &str, report: Report, zone: chrono_tz::Tz) -> Result<DataFrame, ParseError> {
        parse_report(
            &fixture(name),
            report,
            "id1000000001",
            zone,
            pulled(),
            "dt=2026-01-02",
        )
    }

    fn valid(df: &DataFrame, report: Report) {
        let table = Registry::embedded().unwrap().get(report.table()).unwrap();
        table.validate(df, "dt=2026-01-02").unwrap();
    }

    fn millis(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
        let s = df.column(c).unwrap().as_materialized_series().clone();
        s.cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect()
    }

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn installs_fixture_keeps_quoted_commas_and_nulls_empty_fields() {
        let r = Report::InstallsReport;
        let df = parse("installs_report", r, chrono_tz::UTC).unwrap();
        valid(&df, r);
        assert_eq!(df.height(), 2);
        assert_eq!(
            strs(&df, "campaign"),
            [Some("KR_iOS_Purchase, Broad".into()), None]
        );
        assert_eq!(strs(&df, "ad")[0].as_deref(), Some("Video \"Dragon\", 15s"));
        assert_eq!(strs(&df, "adset")[0].as_deref(), Some("Lookalike 1%, KR"));
        assert_eq!(strs(&df, "attributed_touch_type")[1], None);
        assert_eq!(millis(&df, "attributed_touch_time")[1], None);
        assert_eq!(
            millis(&df, "install_time"),
            [
                Some(ms(2026, 1, 2, 8, 30, 0)),
                Some(ms(2026, 1, 2, 23, 59, 59))
            ]
        );
        let cost: Vec<_> = df
            .column("cost_value")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(cost, [Some(1_250_000), None]);
        let wifi: Vec<_> = df.column("wifi").unwrap().bool().unwrap().iter().collect();
        assert_eq!(wifi, [Some(true), None]);
        assert_eq!(
            strs(&df, "af_app_id"),
            [
                Some("id1000000001".into()),
                Some("com.example.ltvdemo".into())
            ]
        );
        assert_eq!(strs(&df, "app_id")[1].as_deref(), Some("id1000000001"));
        assert_eq!(strs(&df, EXTRA), [None, None]);
        assert_eq!(
            millis(&df, PULLED_AT),
            [Some(pulled().timestamp_millis()); 2]
        );
        assert_eq!(count_rows(&fixture("installs_report")), 2);
    }

    #[test]
    fn times_convert_from_the_requested_zone() {
        let df = parse(
            "installs_report",
            Report::InstallsReport,
            chrono_tz::Asia::Seoul,
        )
        .unwrap();
        // 2026-01-02 08:30:00 in Seoul (UTC+9) is 2026-01-01T23:30:00Z.
        assert_eq!(
            millis(&df, "install_time")[0],
            Some(ms(2026, 1, 1, 23, 30, 0))
        );
        let dtype = df.column("install_time").unwrap().dtype().clone();
        assert_eq!(
            dtype,
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        );
    }

    #[test]
    fn in_app_revenue_is_exact_micros() {
        let r = Report::InAppEventsReport;
        let df = parse("in_app_events_report", r, chrono_tz::UTC).unwrap();
        valid(&df, r);
        let rev: Vec<_> = df
            .column("event_revenue")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(rev, [None, Some(6_500_000_000), Some(990_000)]);
        let usd: Vec<_> = df
            .column("event_revenue_usd")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(usd, [None, Some(4_814_800), Some(990_000)]);
        // A registration has no value: the key column holds "" rather than null.
        assert_eq!(strs(&df, "event_value")[0].as_deref(), Some(""));
        assert_eq!(
            strs(&df, "event_value")[1].as_deref(),
            Some("{\"af_revenue\":\"6500\",\"af_currency\":\"KRW\"}")
        );
        let validated: Vec<_> = df
            .column("is_receipt_validated")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(validated, [None, Some(true), Some(false)]);
    }

    #[test]
    fn header_only_is_zero_rows_with_the_full_schema() {
        for r in [Report::InstallsReport, Report::OrganicInAppEventsReport] {
            let df = parse("header_only", r, chrono_tz::UTC).unwrap();
            assert_eq!(df.height(), 0);
            valid(&df, r);
            let table = Registry::embedded().unwrap().get(r.table()).unwrap();
            assert_eq!(df.schema().as_ref(), &table.file_schema());
        }
        assert_eq!(count_rows(&fixture("header_only")), 0);
    }

    #[test]
    fn blocked_installs_have_their_reasons() {
        let r = Report::BlockedInstallsReport;
        let df = parse("blocked_installs_report", r, chrono_tz::UTC).unwrap();
        valid(&df, r);
        assert_eq!(
            strs(&df, "blocked_sub_reason"),
            [Some("CTIT under 10s, bot".into())]
        );
        assert_eq!(strs(&df, "blocked_reason_rule"), [None]);
        // The installs report lacks the Protect360 columns: parsing it as blocked names one.
        let e = parse("installs_report", r, chrono_tz::UTC).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Blocked Reason"));
    }

    #[test]
    fn unknown_columns_are_kept_in_extra() {
        let r = Report::InstallsReport;
        let df = parse("extra_column", r, chrono_tz::UTC).unwrap();
        valid(&df, r);
        let extra = strs(&df, EXTRA);
        let first: serde_json::Value = serde_json::from_str(extra[0].as_deref().unwrap()).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"Is LAT": "false", "Device Model": "iPhone15,2"})
        );
        let second: serde_json::Value = serde_json::from_str(extra[1].as_deref().unwrap()).unwrap();
        assert_eq!(
            second,
            serde_json::json!({"Is LAT": null, "Device Model": null})
        );
        assert_eq!(
            strs(&df, "campaign")[0].as_deref(),
            Some("KR_iOS_Purchase, Broad")
        );
    }

    #[test]
    fn bad_bodies_name_row_and_column() {
        let e = parse("bad_time", Report::InstallsReport, chrono_tz::UTC).unwrap_err();
        assert_eq!(
            (e.row, e.column.as_deref()),
            (Some(2), Some("Install Time"))
        );
        assert!(e.to_string().contains("row 2, column Install Time"), "{e}");
        assert!(e.to_string().contains("2026/01/02 23:59:59"), "{e}");
        assert!(!e.retryable);

        let e = parse("bad_revenue", Report::InAppEventsReport, chrono_tz::UTC).unwrap_err();
        assert_eq!(
            (e.row, e.column.as_deref()),
            (Some(3), Some("Event Revenue"))
        );
        assert!(e.to_string().contains("6,500.00"), "{e}");

        let e = parse("bad_header", Report::InstallsReport, chrono_tz::UTC).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Install Time"));
        assert!(
            e.to_string()
                .contains("appsflyer.installs_report dt=2026-01-02"),
            "{e}"
        );
    }

    #[test]
    fn cut_bodies_are_retryable_and_key_gaps_are_errors() {
        let body = fixture("installs_report");
        let cut = &body[..body.len() - 30];
        let e = parse_report(
            cut,
            Report::InstallsReport,
            "x",
            chrono_tz::UTC,
            pulled(),
            "p",
        )
        .unwrap_err();
        assert!(e.retryable, "{e}");
        let e = parse_report(
            b"",
            Report::InstallsReport,
            "x",
            chrono_tz::UTC,
            pulled(),
            "p",
        )
        .unwrap_err();
        assert!(e.retryable);

        let text = String::from_utf8(body).unwrap();
        let no_id = text.replace("1767398399000-0000000000000000002", "");
        let e = parse_report(
            no_id.as_bytes(),
            Report::InstallsReport,
            "x",
            chrono_tz::UTC,
            pulled(),
            "p",
        )
        .unwrap_err();
        assert_eq!(
            (e.row, e.column.as_deref()),
            (Some(2), Some("AppsFlyer ID"))
        );
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(decimal_to_micros("4.99"), Ok(4_990_000));
        assert_eq!(decimal_to_micros("6500"), Ok(6_500_000_000));
        assert_eq!(decimal_to_micros("-0.5"), Ok(-500_000));
        assert_eq!(decimal_to_micros(".25"), Ok(250_000));
        assert_eq!(decimal_to_micros("0.1234560"), Ok(123_456));
        assert!(decimal_to_micros("0.00000001").is_err());
        assert!(decimal_to_micros("1e3").is_err());
        assert!(decimal_to_micros("").is_err());
        assert!(decimal_to_micros(".").is_err());
        assert!(decimal_to_micros("99999999999999999").is_err());
    }

    #[test]
    fn count_rows_respects_quotes() {
        assert_eq!(count_rows(b"a,b\n\"x\ny\",1\n2,3\n"), 2);
        assert_eq!(count_rows(b"\xEF\xBB\xBFa,b\r\n1,2\r\n"), 1);
        assert_eq!(count_rows(b""), 0);
    }
}
