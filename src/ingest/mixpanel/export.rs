//! The Raw Event Export body (`GET /api/2.0/export`, JSON Lines, plain or gzip) parsed into a
//! frame of `raw.mixpanel_export`.
//!
//! Each line is parsed once into a small borrowed struct (the `properties` object kept as its
//! raw text, so unknown and nested fields survive byte for byte), pushed into column builders,
//! and the frame is built once at the end: millions of lines stay cheap.

use std::borrow::Cow;
use std::io::Read as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use flate2::read::MultiGzDecoder;
use polars::prelude::*;
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::wire::{decimal_to_micros, loose_str, opt_str, project_time_to_utc_ms};
use crate::ingest::ParseError;

/// Stream name in [`ParseError`]s and logs.
pub const EXPORT_STREAM: &str = "mixpanel.export";

/// The line Mixpanel writes when it stops streaming an export before the end.
const TERMINATED_EARLY: &[u8] = b"terminated early";

/// How the export was requested and how the project stores time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The request set `time_in_ms=true`: `properties.time` is in milliseconds, not seconds.
    pub time_in_ms: bool,
    /// Set for projects that store *project time* (created before 2023): `time` is the
    /// wall-clock time in this zone written as if it were UTC. `None`: `time` is true UTC.
    pub project_timezone: Option<Tz>,
}

/// One export line, borrowed from the body.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
    #[serde(borrow)]
    properties: &'a RawValue,
}

/// The properties the raw table has columns for; every other one stays in `properties`.
#[derive(Deserialize)]
struct Props<'a> {
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    distinct_id: Option<&'a RawValue>,
    #[serde(rename = "$insert_id", borrow, default)]
    insert_id: Option<&'a RawValue>,
    #[serde(rename = "$device_id", borrow, default)]
    device_id: Option<&'a RawValue>,
    #[serde(rename = "$user_id", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    appsflyer_id: Option<&'a RawValue>,
    #[serde(rename = "$os", borrow, default)]
    os: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mp_country_code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mp_processing_time_ms: Option<&'a RawValue>,
    #[serde(borrow, default)]
    revenue: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
}

/// Column builders of `raw.mixpanel_export` (without `dt`, which lives in the path).
struct Cols {
    event: StringChunkedBuilder,
    time: Vec<Option<i64>>,
    distinct_id: StringChunkedBuilder,
    insert_id: StringChunkedBuilder,
    device_id: StringChunkedBuilder,
    user_id: StringChunkedBuilder,
    appsflyer_id: StringChunkedBuilder,
    os: StringChunkedBuilder,
    country_code: StringChunkedBuilder,
    revenue_micros: Vec<Option<i64>>,
    currency: StringChunkedBuilder,
    mp_processing_time_ms: Vec<Option<i64>>,
    properties: StringChunkedBuilder,
    line: Vec<u64>,
    malformed: StringChunkedBuilder,
}

impl Cols {
    fn new(capacity: usize) -> Self {
        let s = |name: &str| StringChunkedBuilder::new(name.into(), capacity);
        Cols {
            event: s("event"),
            time: Vec::with_capacity(capacity),
            distinct_id: s("distinct_id"),
            insert_id: s("insert_id"),
            device_id: s("device_id"),
            user_id: s("user_id"),
            appsflyer_id: s("appsflyer_id"),
            os: s("os"),
            country_code: s("country_code"),
            revenue_micros: Vec::with_capacity(capacity),
            currency: s("currency"),
            mp_processing_time_ms: Vec::with_capacity(capacity),
            properties: s("properties"),
            line: Vec::with_capacity(capacity),
            malformed: s("malformed"),
        }
    }

    fn into_frame(self, pulled_at: DateTime<Utc>) -> PolarsResult<DataFrame> {
        let n = self.line.len();
        let millis = |name: &str, v: Vec<Option<i64>>| -> Column {
            Series::new(name.into(), v)
                .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
                .into()
        };
        DataFrame::new_infer_height(vec![
            self.event.finish().into_column(),
            millis("time", self.time),
            self.distinct_id.finish().into_column(),
            self.insert_id.finish().into_column(),
            self.device_id.finish().into_column(),
            self.user_id.finish().into_column(),
            self.appsflyer_id.finish().into_column(),
            self.os.finish().into_column(),
            self.country_code.finish().into_column(),
            Series::new("revenue_micros".into(), self.revenue_micros).into(),
            self.currency.finish().into_column(),
            Series::new("mp_processing_time_ms".into(), self.mp_processing_time_ms).into(),
            self.properties.finish().into_column(),
            Series::new("line".into(), self.line).into(),
            self.malformed.finish().into_column(),
            millis("pulled_at", vec![Some(pulled_at.timestamp_millis()); n]),
        ])
    }
}

/// Decompresses a gzip body (sniffed by its magic bytes, since the connector may or may not
/// have decoded `Content-Encoding: gzip` already); plain bodies are borrowed as they are.
fn decode<'a>(body: &'a [u8], partition: &str) -> Result<Cow<'a, [u8]>, ParseError> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(body.len().saturating_mul(8));
        MultiGzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| {
                ParseError::new(
                    EXPORT_STREAM,
                    partition,
                    format!("the gzip body is incomplete or corrupt: {e}"),
                )
                .truncated()
            })?;
        Ok(Cow::Owned(out))
    } else {
        Ok(Cow::Borrowed(body))
    }
}

/// Parses an export body (plain or gzip JSON Lines) into a frame matching
/// `raw.mixpanel_export` without `dt` (the partition lives in the path).
///
/// Every line is kept, duplicates included (the export is not deduplicated, and neither is
/// this layer). `line` is the 1-based line number in the decompressed body; blank lines are
/// skipped but counted. A line that is not JSON (a body cut mid-line or corrupted in transit)
/// and Mixpanel's `terminated early` marker fail the whole pull as retryable. A well-formed
/// line with an impossible value (a missing or non-numeric `time`, a non-decimal `revenue`)
/// is one bad row, not a bad body: it lands with that field null and `malformed` saying what
/// was wrong, so the cleanse stage quarantines and counts it and the rest of the day is kept.
/// Nothing partial is ever returned.
pub fn parse_export(
    body: &[u8],
    opts: &ExportOptions,
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<DataFrame, ParseError> {
    let body = decode(body, partition)?;
    let err = |row: u64, msg: String| ParseError::new(EXPORT_STREAM, partition, msg).at_row(row);
    let estimate = memchr_count(&body);
    let mut cols = Cols::new(estimate);

    for (i, raw_line) in body.split(|&b| b == b'\n').enumerate() {
        let row = i as u64 + 1;
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed == TERMINATED_EARLY {
            return Err(err(
                row,
                "Mixpanel stopped streaming the export (\"terminated early\")".into(),
            )
            .truncated());
        }
        let parsed: Line<'_> = serde_json::from_slice(line).map_err(|e| match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => err(
                row,
                format!("not a complete JSON line (body cut short or corrupt): {e}"),
            )
            .truncated(),
            Category::Data => err(row, format!("not an export event: {e}")),
        })?;
        let event = loose_str(parsed.event)
            .map_err(|found| err(row, format!("event is {found}, not a name")).in_column("event"))?
            .ok_or_else(|| err(row, "event is null".into()).in_column("event"))?;
        let props_text = parsed.properties.get();
        let props: Props<'_> = serde_json::from_str(props_text)
            .map_err(|e| err(row, format!("properties: {e}")).in_column("properties"))?;

        let mut malformed: Option<String> = None;
        let time = match props.time {
            None => {
                malformed = Some("time: the event has no time".into());
                None
            }
            Some(time) => {
                let ms = event_time_ms(time.get(), opts);
                if ms.is_none() {
                    malformed = Some(format!(
                        "time: must be a number of {} since the epoch, found {}",
                        if opts.time_in_ms {
                            "milliseconds"
                        } else {
                            "seconds"
                        },
                        time.get()
                    ));
                }
                ms
            }
        };

        // Strings are borrowed from the body: no allocation unless they hold escapes.
        let not_str = |column: &str, found: &str| {
            err(row, format!("expected a string, found {found}")).in_column(column)
        };

        // Money is never dropped silently: an unreadable amount marks the row malformed.
        let revenue_micros = match props.revenue.map(loose_str) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(text))) => {
                let micros = decimal_to_micros(text.trim());
                if micros.is_none() && malformed.is_none() {
                    malformed = Some(format!(
                        "revenue: must be a decimal number that fits in micros, found {text}"
                    ));
                }
                micros
            }
            Some(Err(found)) => {
                if malformed.is_none() {
                    malformed = Some(format!("revenue: must be a decimal number, found {found}"));
                }
                None
            }
        };
        let processing = match props.mp_processing_time_ms {
            None => None,
            Some(v) if v.get() == "null" => None,
            Some(v) => Some(integer(v.get()).ok_or_else(|| {
                err(
                    row,
                    format!(
                        "mp_processing_time_ms must be an integer, found {}",
                        v.get()
                    ),
                )
                .in_column("mp_processing_time_ms")
            })?),
        };

        // A missing distinct_id is Mixpanel's anonymous "" (events not tied to any user).
        let distinct_id = opt_str(props.distinct_id).map_err(|f| not_str("distinct_id", f))?;
        cols.distinct_id
            .append_value(distinct_id.as_deref().unwrap_or(""));
        cols.event.append_value(event.as_ref());
        cols.time.push(time);
        cols.insert_id.append_option(
            opt_str(props.insert_id)
                .map_err(|f| not_str("insert_id", f))?
                .as_deref(),
        );
        cols.device_id.append_option(
            opt_str(props.device_id)
                .map_err(|f| not_str("device_id", f))?
                .as_deref(),
        );
        cols.user_id.append_option(
            opt_str(props.user_id)
                .map_err(|f| not_str("user_id", f))?
                .as_deref(),
        );
        cols.appsflyer_id.append_option(
            opt_str(props.appsflyer_id)
                .map_err(|f| not_str("appsflyer_id", f))?
                .as_deref(),
        );
        cols.os
            .append_option(opt_str(props.os).map_err(|f| not_str("os", f))?.as_deref());
        cols.country_code.append_option(
            opt_str(props.mp_country_code)
                .map_err(|f| not_str("country_code", f))?
                .as_deref(),
        );
        cols.revenue_micros.push(revenue_micros);
        cols.currency.append_option(
            opt_str(props.currency)
                .map_err(|f| not_str("currency", f))?
                .as_deref(),
        );
        cols.mp_processing_time_ms.push(processing);
        cols.properties.append_value(props_text);
        cols.line.push(row);
        cols.malformed.append_option(malformed.as_deref());
    }

    cols.into_frame(pulled_at)
        .map_err(|e| ParseError::new(EXPORT_STREAM, partition, format!("building the frame: {e}")))
}

/// Number of newline bytes: a capacity estimate for the column builders.
fn memchr_count(body: &[u8]) -> usize {
    body.iter().filter(|&&b| b == b'\n').count() + 1
}

/// An integer JSON number; an integral float (`1.6e12`) is accepted too.
fn integer(text: &str) -> Option<i64> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(v);
    }
    let f: f64 = text.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

/// `properties.time` as a UTC instant in ms: seconds or ms per the request, then out of
/// project time when the project stores it. `None` when it is not a usable number.
fn event_time_ms(text: &str, opts: &ExportOptions) -> Option<i64> {
    // JSON numbers only: a quoted time is not what Mixpanel sends and is refused.
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return None;
    }
    let ms = if let Ok(v) = text.parse::<i64>() {
        if opts.time_in_ms {
            v
        } else {
            v.checked_mul(1000)?
        }
    } else {
        let f: f64 = text.parse().ok()?;
        let ms = if opts.time_in_ms { f } else { f * 1000.0 };
        if !ms.is_finite() || ms.abs() > 9.0e15 {
            return None;
        }
        ms.round() as i64
    };
    match opts.project_timezone {
        Some(tz) => project_time_to_utc_ms(ms, tz),
        None => Some(ms),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::schema::Registry;
    use crate::test_support::strs;
    use chrono::NaiveDate;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_support::fixture("mixpanel", name)
    }

    fn pulled() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_398_400, 0).unwrap() // 2026-01-03T00:00:00Z
    }

    fn utc_ms(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn validate(df: &DataFrame) {
        Registry::embedded()
            .unwrap()
            .get("raw.mixpanel_export")
            .unwrap()
            .validate(df, "dt=2026-01-02")
            .unwrap();
    }

    fn times(df: &DataFrame) -> Vec<i64> {
        df.column("time")
            .unwrap()
            .datetime()
            .unwrap()
            .physical()
            .iter()
            .map(Option::unwrap)
            .collect()
    }

    fn parse(body: &[u8], opts: &ExportOptions) -> Result<DataFrame, ParseError> {
        parse_export(body, opts, pulled(), "dt=2026-01-02")
    }

    fn check_small(df: &DataFrame) {
        validate(df);
        assert_eq!(df.height(), 7);
        // The duplicate send (same $insert_id) is kept: dedup happens in the clean layer.
        let inserts = strs(df, "insert_id");
        let dup = Some("a1b2c3d4e5f60718".to_string());
        assert_eq!(inserts.iter().filter(|i| **i == dup).count(), 2);
        // The old SDK's event has no $insert_id.
        assert_eq!(inserts[6], None);
        assert_eq!(
            df.column("line")
                .unwrap()
                .u64()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            (1..=7).map(Some).collect::<Vec<_>>()
        );
        let revenue: Vec<Option<i64>> = df
            .column("revenue_micros")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(revenue[2], Some(9_990_000));
        assert_eq!(revenue[3], Some(9_990_000));
        assert_eq!(revenue[5], Some(5_500_000_000));
        assert_eq!(revenue[0], None);
        assert_eq!(strs(df, "currency")[5].as_deref(), Some("KRW"));
        assert_eq!(times(df)[0], utc_ms(2026, 1, 2, 0, 0, 5));
        assert_eq!(strs(df, "user_id")[1].as_deref(), Some("U000000001"));
        assert_eq!(strs(df, "os")[0].as_deref(), Some("iOS"));
        assert_eq!(strs(df, "country_code")[0].as_deref(), Some("KR"));
        // Nested and unknown properties survive in `properties`, value for value.
        let props = strs(df, "properties");
        let level: serde_json::Value = serde_json::from_str(props[4].as_deref().unwrap()).unwrap();
        assert_eq!(level["level_info"]["rewards"][1], serde_json::json!(100));
        assert_eq!(level["some_unknown_flag"], serde_json::json!(true));
        assert_eq!(level["$insert_id"], serde_json::json!("0000000000000005"));
        assert!(props[2].as_deref().unwrap().contains("\"revenue\":9.99"));
    }

    #[test]
    fn the_small_fixture_parses_plain_and_gzip() {
        let opts = ExportOptions::default();
        let plain = fixture("export_small.jsonl");
        let gz = fixture("export_small.jsonl.gz");
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "the .gz fixture must be gzip");
        let a = parse(&plain, &opts).unwrap();
        let b = parse(&gz, &opts).unwrap();
        check_small(&a);
        check_small(&b);
        assert!(a.equals_missing(&b));
    }

    #[test]
    fn time_in_ms_and_project_time_are_honoured() {
        let opts = ExportOptions {
            time_in_ms: true,
            project_timezone: None,
        };
        let body = br#"{"event":"a","properties":{"time":1767312000123,"distinct_id":"x"}}"#;
        let df = parse(body, &opts).unwrap();
        validate(&df);
        assert_eq!(times(&df), vec![1_767_312_000_123]);

        // Seoul (UTC+9, no DST): local 2026-01-02 08:30:00 stored as project time.
        let seoul = ExportOptions {
            time_in_ms: false,
            project_timezone: Some(chrono_tz::Asia::Seoul),
        };
        let local = utc_ms(2026, 1, 2, 8, 30, 0) / 1000;
        let body = format!(r#"{{"event":"a","properties":{{"time":{local},"distinct_id":"x"}}}}"#);
        let df = parse(body.as_bytes(), &seoul).unwrap();
        assert_eq!(times(&df), vec![utc_ms(2026, 1, 1, 23, 30, 0)]);

        // Los Angeles around DST: PST (UTC-8) in winter, PDT (UTC-7) in summer, and the
        // repeated 01:30 of 2026-11-01 read as its earlier (PDT) instant.
        let la = ExportOptions {
            time_in_ms: true,
            project_timezone: Some(chrono_tz::America::Los_Angeles),
        };
        let body = [
            utc_ms(2026, 3, 7, 12, 0, 0),
            utc_ms(2026, 3, 8, 12, 0, 0),
            utc_ms(2026, 11, 1, 1, 30, 0),
        ]
        .iter()
        .map(|t| format!(r#"{{"event":"a","properties":{{"time":{t},"distinct_id":"x"}}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
        let df = parse(body.as_bytes(), &la).unwrap();
        assert_eq!(
            times(&df),
            vec![
                utc_ms(2026, 3, 7, 20, 0, 0),
                utc_ms(2026, 3, 8, 19, 0, 0),
                utc_ms(2026, 11, 1, 8, 30, 0),
            ]
        );
    }

    #[test]
    fn broken_bodies_fail_and_say_whether_to_retry() {
        let opts = ExportOptions::default();
        let e = parse(&fixture("export_terminated.jsonl"), &opts).unwrap_err();
        assert!(e.retryable, "{e}");
        assert_eq!(e.row, Some(3));

        let e = parse(&fixture("export_cut.jsonl"), &opts).unwrap_err();
        assert!(e.retryable, "{e}");
        assert_eq!(e.row, Some(3));

        // A bad time is one bad row: it lands, null, with the reason.
        let df = parse(&fixture("export_bad_time.jsonl"), &opts).unwrap();
        validate(&df);
        let malformed = strs(&df, "malformed");
        assert_eq!(malformed[0], None);
        assert!(
            malformed[1].as_deref().unwrap().starts_with("time: "),
            "{malformed:?}"
        );
        assert_eq!(df.column("time").unwrap().null_count(), 1);

        // A gzip body cut short is as retryable as a plain one.
        let gz = fixture("export_small.jsonl.gz");
        let e = parse(&gz[..gz.len() / 2], &opts).unwrap_err();
        assert!(e.retryable, "{e}");

        // Money is never dropped silently: the row says why its revenue is missing.
        let body =
            br#"{"event":"purchase","properties":{"time":1,"distinct_id":"x","revenue":"lots"}}"#;
        let df = parse(body, &opts).unwrap();
        assert_eq!(
            strs(&df, "malformed")[0].as_deref(),
            Some("revenue: must be a decimal number that fits in micros, found lots")
        );
        assert_eq!(df.column("revenue_micros").unwrap().null_count(), 1);
    }

    #[test]
    fn empty_and_loose_values() {
        let opts = ExportOptions::default();
        let df = parse(b"", &opts).unwrap();
        validate(&df);
        assert_eq!(df.height(), 0);
        // Numbers where strings are expected become their text; a string revenue is read as
        // a decimal; a missing distinct_id is Mixpanel's anonymous "".
        let body = b"{\"event\":\"a\",\"properties\":{\"time\":1.5,\"$user_id\":42,\"revenue\":\"1200\"}}\r\n\n";
        let df = parse(body, &opts).unwrap();
        validate(&df);
        assert_eq!(times(&df), vec![1500]);
        assert_eq!(strs(&df, "user_id")[0].as_deref(), Some("42"));
        assert_eq!(strs(&df, "distinct_id")[0].as_deref(), Some(""));
        assert_eq!(
            df.column("revenue_micros").unwrap().i64().unwrap().get(0),
            Some(1_200_000_000)
        );
    }
}
