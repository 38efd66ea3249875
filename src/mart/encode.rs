//! Polars columns to mysql_async [`Value`]s, by the schema's column types.
//!
//! Two steps. [`check_frame`] looks at whole columns before any statement is sent (types,
//! nulls, string lengths, non-finite floats, dates MySQL cannot hold, partition values) and
//! names the first bad row and column, so a bad frame never opens a transaction. [`encode_rows`]
//! then turns a slice of rows into the row-major parameter list of one multi-row INSERT; it
//! allocates only for that slice, so a mart of millions of rows is never held twice.
//!
//! Mapping (the DDL's types, see `schema::ddl`): bool → 0/1; signed integers → `Int`;
//! unsigned → `UInt`; float32 → `Float`; float64 → `Double`; string → UTF-8 bytes;
//! date → `DATE`; datetime → `DATETIME` holding the wall-clock time in the column's zone (UTC
//! for zoneless columns), nanoseconds cut to microseconds, MySQL's precision; duration → its
//! integer count of the schema's unit.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use mysql_async::Value;
use polars::prelude::{ChunkAgg, Column, DataFrame, DataType, StringNameSpaceImpl, TimeUnit};

use super::error::MartError;
use crate::schema::{ColumnSchema, TableSchema};

/// The first and last day a MySQL DATE or DATETIME holds.
pub(crate) fn mysql_date_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1000, 1, 1).unwrap_or(NaiveDate::MIN),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
    )
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01, Polars' physical date.
pub(crate) fn days_to_date(days: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// Polars' physical date of a day.
pub(crate) fn date_to_days(d: NaiveDate) -> i32 {
    // Dates within chrono's range are within ±2^31 days of 1970.
    i32::try_from(d.signed_duration_since(epoch()).num_days()).unwrap_or(i32::MAX)
}

/// The label of the partition a row is in, for messages: `dt=2026-01-03`.
pub(crate) fn partition_of(schema: &TableSchema, df: &DataFrame, row: usize) -> String {
    let Some(p) = &schema.partition else {
        return "(unpartitioned)".to_owned();
    };
    let day = df
        .column(p)
        .ok()
        .and_then(|c| c.date().ok())
        .and_then(|ca| ca.physical().get(row))
        .and_then(days_to_date);
    match day {
        Some(d) => format!("{p}={d}"),
        None => format!("{p}=?"),
    }
}

/// Checks every value of `df` fits its MySQL column, before anything is sent.
///
/// `partitions`: the days being replaced; each row's partition value must be one of them, or a
/// rerun would leave the row's old day in place beside it. `None` for unpartitioned tables.
/// Errors name the table, the row's partition, the row (0-based) and the column.
pub(crate) fn check_frame(
    schema: &TableSchema,
    table: &str,
    df: &DataFrame,
    partitions: Option<&HashSet<i32>>,
) -> Result<(), MartError> {
    // Presence, unexpected columns and types first: the value checks below need the dtypes.
    let label = match partitions {
        Some(days) if days.len() == 1 => {
            let d = days.iter().next().copied().and_then(days_to_date);
            match (&schema.partition, d) {
                (Some(p), Some(d)) => format!("{p}={d}"),
                _ => "(unpartitioned)".to_owned(),
            }
        }
        Some(days) => format!("{} partitions", days.len()),
        None => "(unpartitioned)".to_owned(),
    };
    for col in &schema.columns {
        match df.column(&col.name) {
            Ok(c) if c.dtype() == &col.dtype => {}
            // Missing or wrongly typed: let the schema's own validation word the message.
            _ => {
                return Err(validation_error(schema, table, df, &label));
            }
        }
    }
    if df.width() != schema.columns.len() {
        return Err(validation_error(schema, table, df, &label));
    }

    let bad = |row: usize, column: &ColumnSchema, problem: String| MartError::BadValue {
        table: table.to_owned(),
        partition: partition_of(schema, df, row),
        row,
        column: column.name.clone(),
        problem,
    };

    // Keys first, then the other columns in schema order: a null key is the worst problem.
    let mut ordered: Vec<&ColumnSchema> = schema.columns.iter().collect();
    ordered.sort_by_key(|c| !schema.is_key(&c.name));
    for col in &ordered {
        let c = df.column(&col.name).map_err(|e| polars(table, e))?;
        if !col.nullable
            && c.null_count() > 0
            && let Some(row) = first_null(c)
        {
            let what = if schema.is_key(&col.name) {
                "a key column"
            } else {
                "a NOT NULL column"
            };
            return Err(bad(row, col, format!("null in {what}")));
        }
    }

    for col in &schema.columns {
        let c = df.column(&col.name).map_err(|e| polars(table, e))?;
        if let Some((row, problem)) = first_unstorable(col, c).map_err(|e| polars(table, e))? {
            return Err(bad(row, col, problem));
        }
    }

    if let (Some(p), Some(days)) = (&schema.partition, partitions) {
        let c = df.column(p).map_err(|e| polars(table, e))?;
        let ca = c.date().map_err(|e| polars(table, e))?;
        if let Some((row, day)) = ca
            .physical()
            .iter()
            .enumerate()
            .find_map(|(i, d)| d.filter(|d| !days.contains(d)).map(|d| (i, d)))
        {
            let Some(col) = schema.column(p) else {
                return Err(polars(table, "partition column vanished"));
            };
            let shown = days_to_date(day).map_or_else(|| day.to_string(), |d| d.to_string());
            return Err(bad(
                row,
                col,
                format!(
                    "the row is in partition {shown}, which is not among the partitions being replaced; pass every day the frame holds"
                ),
            ));
        }
    }
    Ok(())
}

fn validation_error(schema: &TableSchema, table: &str, df: &DataFrame, label: &str) -> MartError {
    match schema.validate(df, label) {
        Err(source) => MartError::Schema {
            table: table.to_owned(),
            source,
        },
        // validate is laxer than us only about a missing partition column.
        Ok(()) => MartError::Usage {
            table: table.to_owned(),
            problem: format!(
                "the frame has columns [{}], the table [{}]",
                df.get_column_names()
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                schema
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

fn polars(table: &str, e: impl std::fmt::Display) -> MartError {
    MartError::Polars {
        table: table.to_owned(),
        action: "checking the frame",
        source: polars::prelude::PolarsError::ComputeError(e.to_string().into()),
    }
}

fn first_null(c: &Column) -> Option<usize> {
    c.is_null().iter().position(|b| b == Some(true))
}

/// The first value of a column MySQL would refuse or alter, with the reason.
fn first_unstorable(
    col: &ColumnSchema,
    c: &Column,
) -> Result<Option<(usize, String)>, polars::prelude::PolarsError> {
    let (lo, hi) = mysql_date_range();
    Ok(match &col.dtype {
        DataType::String => {
            let Some((max_chars, max_bytes)) = col.mysql_string_limit() else {
                return Ok(None);
            };
            let ca = c.str()?;
            let byte_limit = max_bytes.unwrap_or(u32::MAX);
            // Bytes bound characters from above and cost nothing to count: look closer only
            // when some value has more bytes than the column has characters.
            if ca.str_len_bytes().max().unwrap_or(0) <= max_chars.min(byte_limit) {
                return Ok(None);
            }
            ca.iter().enumerate().find_map(|(i, v)| {
                let v = v?;
                let chars = v.chars().count();
                if chars > max_chars as usize {
                    Some((
                        i,
                        format!("{chars} characters, over the column's {max_chars}"),
                    ))
                } else if v.len() > byte_limit as usize {
                    Some((i, format!("{} bytes, over TEXT's {byte_limit}", v.len())))
                } else {
                    None
                }
            })
        }
        DataType::Float32 => c.f32()?.iter().enumerate().find_map(|(i, v)| {
            v.filter(|x| !x.is_finite()).map(|x| {
                (
                    i,
                    format!("{x} cannot be stored in a MySQL FLOAT; use null"),
                )
            })
        }),
        DataType::Float64 => c.f64()?.iter().enumerate().find_map(|(i, v)| {
            v.filter(|x| !x.is_finite()).map(|x| {
                (
                    i,
                    format!("{x} cannot be stored in a MySQL DOUBLE; use null"),
                )
            })
        }),
        DataType::Date => c.date()?.physical().iter().enumerate().find_map(|(i, v)| {
            let v = v?;
            match days_to_date(v) {
                Some(d) if d >= lo && d <= hi => None,
                Some(d) => Some((i, format!("{d} is outside MySQL's DATE range {lo}..{hi}"))),
                None => Some((i, format!("day {v} is not a date"))),
            }
        }),
        DataType::Datetime(tu, _) => {
            let tz = zone(&col.dtype)?;
            let phys = c.datetime()?.physical().clone();
            phys.iter().enumerate().find_map(|(i, v)| {
                let v = v?;
                match wall_clock(v, *tu, tz.as_ref()) {
                    Some(t) if t.date() >= lo && t.date() <= hi => None,
                    Some(t) => Some((
                        i,
                        format!("{t} is outside MySQL's DATETIME range {lo}..{hi}"),
                    )),
                    None => Some((i, format!("{v} is not a representable time"))),
                }
            })
        }
        _ => None,
    })
}

/// The chrono zone of a zoned datetime dtype; `None` for naive datetimes and other types.
pub(crate) fn zone(
    dtype: &DataType,
) -> Result<Option<chrono_tz::Tz>, polars::prelude::PolarsError> {
    match dtype {
        DataType::Datetime(_, Some(tz)) => Ok(Some(tz.to_chrono()?)),
        _ => Ok(None),
    }
}

/// Splits a Polars timestamp into whole seconds and nanoseconds since 1970 UTC.
fn split(v: i64, tu: TimeUnit) -> (i64, u32) {
    let per_sec: i64 = match tu {
        TimeUnit::Milliseconds => 1_000,
        TimeUnit::Microseconds => 1_000_000,
        TimeUnit::Nanoseconds => 1_000_000_000,
    };
    let nanos_per_tick = 1_000_000_000 / per_sec;
    let secs = v.div_euclid(per_sec);
    // rem_euclid is in 0..per_sec, so the nanoseconds are below 10^9 and fit a u32.
    let nanos = u32::try_from(v.rem_euclid(per_sec) * nanos_per_tick).unwrap_or(0);
    (secs, nanos)
}

/// The wall-clock time a timestamp shows in `tz` (UTC when `None`).
pub(crate) fn wall_clock(
    v: i64,
    tu: TimeUnit,
    tz: Option<&chrono_tz::Tz>,
) -> Option<NaiveDateTime> {
    let (secs, nanos) = split(v, tu);
    let utc = DateTime::from_timestamp(secs, nanos)?;
    Some(match tz {
        Some(tz) => utc.with_timezone(tz).naive_local(),
        None => utc.naive_utc(),
    })
}

/// A DATE parameter.
pub(crate) fn date_value(d: NaiveDate) -> Value {
    Value::Date(
        u16::try_from(d.year()).unwrap_or(0),
        // Months and days are below 32.
        d.month() as u8,
        d.day() as u8,
        0,
        0,
        0,
        0,
    )
}

fn datetime_value(t: NaiveDateTime) -> Value {
    Value::Date(
        u16::try_from(t.year()).unwrap_or(0),
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        // MySQL keeps microseconds; a leap-second nanosecond count (>= 10^9) is clamped.
        (t.nanosecond() / 1_000).min(999_999),
    )
}

/// The parameters of one INSERT of rows `offset..offset + len` of `df`, row-major, every
/// schema column in schema order. `df` has passed [`check_frame`].
pub(crate) fn encode_rows(
    schema: &TableSchema,
    table: &str,
    df: &DataFrame,
    offset: usize,
    len: usize,
) -> Result<Vec<Value>, MartError> {
    let width = schema.columns.len();
    let mut out = vec![Value::NULL; len * width];
    let err = |e: polars::prelude::PolarsError| MartError::Polars {
        table: table.to_owned(),
        action: "encoding rows",
        source: e,
    };
    let start = i64::try_from(offset).unwrap_or(i64::MAX);
    for (ci, col) in schema.columns.iter().enumerate() {
        let c = df.column(&col.name).map_err(err)?.slice(start, len);
        let mut put = |r: usize, v: Value| {
            if let Some(slot) = out.get_mut(r * width + ci) {
                *slot = v;
            }
        };
        match &col.dtype {
            DataType::Boolean => {
                for (r, v) in c.bool().map_err(err)?.iter().enumerate() {
                    if let Some(b) = v {
                        put(r, Value::Int(i64::from(b)));
                    }
                }
            }
            DataType::Int8 => ints(c.i8().map_err(err)?.iter(), &mut put),
            DataType::Int16 => ints(c.i16().map_err(err)?.iter(), &mut put),
            DataType::Int32 => ints(c.i32().map_err(err)?.iter(), &mut put),
            DataType::Int64 => ints(c.i64().map_err(err)?.iter(), &mut put),
            DataType::UInt8 => uints(c.u8().map_err(err)?.iter(), &mut put),
            DataType::UInt16 => uints(c.u16().map_err(err)?.iter(), &mut put),
            DataType::UInt32 => uints(c.u32().map_err(err)?.iter(), &mut put),
            DataType::UInt64 => uints(c.u64().map_err(err)?.iter(), &mut put),
            DataType::Float32 => {
                for (r, v) in c.f32().map_err(err)?.iter().enumerate() {
                    if let Some(x) = v {
                        put(r, Value::Float(x));
                    }
                }
            }
            DataType::Float64 => {
                for (r, v) in c.f64().map_err(err)?.iter().enumerate() {
                    if let Some(x) = v {
                        put(r, Value::Double(x));
                    }
                }
            }
            DataType::String => {
                for (r, v) in c.str().map_err(err)?.iter().enumerate() {
                    if let Some(s) = v {
                        put(r, Value::Bytes(s.as_bytes().to_vec()));
                    }
                }
            }
            DataType::Date => {
                for (r, v) in c.date().map_err(err)?.physical().iter().enumerate() {
                    if let Some(d) = v.and_then(days_to_date) {
                        put(r, date_value(d));
                    }
                }
            }
            DataType::Datetime(tu, _) => {
                let tz = zone(&col.dtype).map_err(err)?;
                for (r, v) in c.datetime().map_err(err)?.physical().iter().enumerate() {
                    if let Some(t) = v.and_then(|v| wall_clock(v, *tu, tz.as_ref())) {
                        put(r, datetime_value(t));
                    }
                }
            }
            DataType::Duration(_) => {
                ints(c.duration().map_err(err)?.physical().iter(), &mut put);
            }
            other => {
                return Err(MartError::Usage {
                    table: table.to_owned(),
                    problem: format!(
                        "column {:?} has type {other}, which has no MySQL mapping",
                        col.name
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn ints<T: Into<i64>>(values: impl Iterator<Item = Option<T>>, put: &mut impl FnMut(usize, Value)) {
    for (r, v) in values.enumerate() {
        if let Some(x) = v {
            put(r, Value::Int(x.into()));
        }
    }
}

fn uints<T: Into<u64>>(
    values: impl Iterator<Item = Option<T>>,
    put: &mut impl FnMut(usize, Value),
) {
    for (r, v) in values.enumerate() {
        if let Some(x) = v {
            put(r, Value::UInt(x.into()));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mart::tests::{tiny_frame, tiny_schema};

    fn days(ds: &[&str]) -> HashSet<i32> {
        ds.iter()
            .map(|d| date_to_days(d.parse().unwrap()))
            .collect()
    }

    #[test]
    fn values_follow_the_column_types() {
        let s = tiny_schema();
        let df = tiny_frame();
        check_frame(
            &s,
            "mart_tiny",
            &df,
            Some(&days(&["2026-01-03", "2026-01-04"])),
        )
        .unwrap();
        let v = encode_rows(&s, "mart_tiny", &df, 0, 2).unwrap();
        let w = s.columns.len();
        assert_eq!(v.len(), 2 * w);
        // Row 0: dt, code, name, amount, n, share, at (UTC), local_at (Seoul wall clock), wait,
        // flag, small.
        assert_eq!(v[0], Value::Date(2026, 1, 3, 0, 0, 0, 0));
        assert_eq!(v[1], Value::Bytes(b"A".to_vec()));
        assert_eq!(
            v[2],
            Value::Bytes("'); DROP TABLE x; --".as_bytes().to_vec())
        );
        assert_eq!(v[3], Value::Int(1_990_000));
        assert_eq!(v[4], Value::UInt(7));
        assert_eq!(v[5], Value::Double(0.25));
        assert_eq!(v[6], Value::Date(2023, 11, 14, 22, 13, 20, 123_000));
        assert_eq!(v[7], Value::Date(2023, 11, 15, 7, 13, 20, 123_456));
        assert_eq!(v[8], Value::Int(1_500));
        assert_eq!(v[9], Value::Int(1));
        assert_eq!(v[10], Value::Int(-3));
        assert_eq!(v[11], Value::Float(1.5));
        assert_eq!(v[12], Value::UInt(u64::MAX));
        // Row 1 holds the nulls.
        assert_eq!(v[w + 2], Value::Bytes("🚀 캠페인".as_bytes().to_vec()));
        assert_eq!(v[w + 3], Value::NULL);
        assert_eq!(v[w + 5], Value::NULL);
        // A slice starts where asked.
        let tail = encode_rows(&s, "mart_tiny", &df, 1, 1).unwrap();
        assert_eq!(tail, v[w..].to_vec());
    }

    #[test]
    fn null_in_not_null_column_names_row_and_column() {
        let s = tiny_schema();
        let mut df = tiny_frame();
        df.replace("n", Column::new("n".into(), [Some(1u32), None]))
            .unwrap();
        let e = check_frame(
            &s,
            "mart_tiny",
            &df,
            Some(&days(&["2026-01-03", "2026-01-04"])),
        )
        .unwrap_err();
        let m = e.to_string();
        assert_eq!(
            m,
            "mysql table mart_tiny, partition dt=2026-01-04, row 1, column \"n\": null in a NOT NULL column"
        );
        assert_eq!((e.row(), e.column()), (Some(1), Some("n")));
    }

    #[test]
    fn too_long_string_names_row_and_column() {
        let s = tiny_schema();
        let mut df = tiny_frame();
        // 16 characters of 4 bytes: fits VARCHAR(16) although it is 64 bytes.
        let fits = "🚀".repeat(16);
        df.replace("code", Column::new("code".into(), [fits.as_str(), "B"]))
            .unwrap();
        check_frame(
            &s,
            "mart_tiny",
            &df,
            Some(&days(&["2026-01-03", "2026-01-04"])),
        )
        .unwrap();
        let long = "x".repeat(17);
        df.replace("code", Column::new("code".into(), ["A", long.as_str()]))
            .unwrap();
        let e = check_frame(
            &s,
            "mart_tiny",
            &df,
            Some(&days(&["2026-01-03", "2026-01-04"])),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "mysql table mart_tiny, partition dt=2026-01-04, row 1, column \"code\": 17 characters, over the column's 16"
        );
    }

    #[test]
    fn nan_and_foreign_partitions_are_refused() {
        let s = tiny_schema();
        let mut df = tiny_frame();
        df.replace("share", Column::new("share".into(), [Some(f64::NAN), None]))
            .unwrap();
        let e = check_frame(&s, "mart_tiny", &df, None).unwrap_err();
        assert!(
            e.to_string().contains("row 0, column \"share\": NaN"),
            "{e}"
        );

        let df = tiny_frame();
        let e = check_frame(&s, "mart_tiny", &df, Some(&days(&["2026-01-03"]))).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("row 1, column \"dt\""), "{m}");
        assert!(
            m.contains("partition 2026-01-04, which is not among"),
            "{m}"
        );
    }

    #[test]
    fn wrong_types_and_columns_use_the_schema_messages() {
        let s = tiny_schema();
        let mut df = tiny_frame();
        df.replace("n", Column::new("n".into(), [1i64, 2])).unwrap();
        let e = check_frame(&s, "mart_tiny", &df, None).unwrap_err();
        assert!(matches!(e, MartError::Schema { .. }), "{e}");
        assert!(e.to_string().contains("column \"n\" has type int64"), "{e}");

        let mut df = tiny_frame();
        df.with_column(Column::new("extra".into(), [1i32, 2]))
            .unwrap();
        let e = check_frame(&s, "mart_tiny", &df, None).unwrap_err();
        assert!(e.to_string().contains("\"extra\""), "{e}");
    }

    #[test]
    fn timestamps_split_below_zero() {
        assert_eq!(split(-1, TimeUnit::Milliseconds), (-1, 999_000_000));
        let t = wall_clock(-1, TimeUnit::Microseconds, None).unwrap();
        assert_eq!(t.to_string(), "1969-12-31 23:59:59.999999");
    }
}
