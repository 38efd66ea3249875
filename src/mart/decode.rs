//! MySQL rows back into a typed Polars frame, by the schema.
//!
//! The reverse of `encode`: each schema column collects its values in a typed buffer and
//! becomes a column of exactly the schema's dtype, so a mart read from MySQL compares equal to
//! the frame that was written (`DataFrame::equals_missing`). Datetimes are read as the
//! wall-clock time of the column's zone and turned back into UTC instants; a wall-clock time
//! that occurs twice (the hour a DST zone falls back) reads as the earlier instant.
//!
//! Both the binary protocol's typed values and the text protocol's bytes are accepted, so a
//! row fetched either way decodes the same.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, TimeZone as _};
use mysql_async::Value;
use polars::prelude::{Column, DataFrame, DataType, TimeUnit};

use super::encode::{date_to_days, zone};
use super::error::MartError;
use crate::schema::TableSchema;

/// One column's values as read so far.
enum Buffer {
    Bool(Vec<Option<bool>>),
    /// Every signed integer width; narrowed by a strict cast at the end.
    Int(Vec<Option<i64>>),
    /// Every unsigned integer width.
    UInt(Vec<Option<u64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
    /// Instants in the column's unit, UTC.
    Datetime(TimeUnit, Option<chrono_tz::Tz>, Vec<Option<i64>>),
    /// Counts of the column's unit.
    Duration(Vec<Option<i64>>),
}

/// Builds a frame of one table from its rows, in schema column order.
pub(crate) struct FrameBuilder<'a> {
    schema: &'a TableSchema,
    table: String,
    buffers: Vec<Buffer>,
    rows: usize,
}

impl<'a> FrameBuilder<'a> {
    pub(crate) fn new(schema: &'a TableSchema, table: &str) -> Result<Self, MartError> {
        let buffers = schema
            .columns
            .iter()
            .map(|c| {
                Ok(match &c.dtype {
                    DataType::Boolean => Buffer::Bool(Vec::new()),
                    DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                        Buffer::Int(Vec::new())
                    }
                    DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                        Buffer::UInt(Vec::new())
                    }
                    DataType::Float32 => Buffer::F32(Vec::new()),
                    DataType::Float64 => Buffer::F64(Vec::new()),
                    DataType::String => Buffer::Str(Vec::new()),
                    DataType::Date => Buffer::Date(Vec::new()),
                    DataType::Datetime(tu, _) => Buffer::Datetime(
                        *tu,
                        zone(&c.dtype).map_err(|source| MartError::Polars {
                            table: table.to_owned(),
                            action: "reading the column's time zone",
                            source,
                        })?,
                        Vec::new(),
                    ),
                    DataType::Duration(_) => Buffer::Duration(Vec::new()),
                    other => {
                        return Err(MartError::Usage {
                            table: table.to_owned(),
                            problem: format!(
                                "column {:?} has type {other}, which has no MySQL mapping",
                                c.name
                            ),
                        });
                    }
                })
            })
            .collect::<Result<Vec<_>, MartError>>()?;
        Ok(FrameBuilder {
            schema,
            table: table.to_owned(),
            buffers,
            rows: 0,
        })
    }

    /// Appends one row: its values in schema column order.
    pub(crate) fn push_row(&mut self, values: Vec<Value>) -> Result<(), MartError> {
        if values.len() != self.buffers.len() {
            return Err(MartError::Usage {
                table: self.table.clone(),
                problem: format!(
                    "a row came back with {} values for {} columns",
                    values.len(),
                    self.buffers.len()
                ),
            });
        }
        let row = self.rows;
        for ((buffer, value), col) in self
            .buffers
            .iter_mut()
            .zip(values)
            .zip(&self.schema.columns)
        {
            let bad = |expected: &str, v: &Value| MartError::Decode {
                table: self.table.clone(),
                row,
                column: col.name.clone(),
                expected: expected.to_owned(),
                found: kind(v),
            };
            let null = matches!(value, Value::NULL);
            match buffer {
                Buffer::Bool(b) => b.push(match &value {
                    _ if null => None,
                    Value::Int(0) | Value::UInt(0) => Some(false),
                    Value::Int(1) | Value::UInt(1) => Some(true),
                    Value::Bytes(x) if x == b"0" => Some(false),
                    Value::Bytes(x) if x == b"1" => Some(true),
                    v => return Err(bad("bool (0 or 1)", v)),
                }),
                Buffer::Int(b) => b.push(match &value {
                    _ if null => None,
                    Value::Int(i) => Some(*i),
                    Value::UInt(u) => Some(i64::try_from(*u).map_err(|_| bad("int64", &value))?),
                    Value::Bytes(x) => Some(parse(x).ok_or_else(|| bad("integer", &value))?),
                    v => return Err(bad("integer", v)),
                }),
                Buffer::UInt(b) => b.push(match &value {
                    _ if null => None,
                    Value::UInt(u) => Some(*u),
                    Value::Int(i) => Some(u64::try_from(*i).map_err(|_| bad("uint64", &value))?),
                    Value::Bytes(x) => {
                        Some(parse(x).ok_or_else(|| bad("unsigned integer", &value))?)
                    }
                    v => return Err(bad("unsigned integer", v)),
                }),
                Buffer::F32(b) => b.push(match &value {
                    _ if null => None,
                    Value::Float(f) => Some(*f),
                    // A DOUBLE column holding a FLOAT's value: the narrowing is exact for it.
                    Value::Double(d) => Some(*d as f32),
                    Value::Bytes(x) => Some(parse(x).ok_or_else(|| bad("float32", &value))?),
                    v => return Err(bad("float32", v)),
                }),
                Buffer::F64(b) => b.push(match &value {
                    _ if null => None,
                    Value::Double(d) => Some(*d),
                    Value::Float(f) => Some(f64::from(*f)),
                    Value::Bytes(x) => Some(parse(x).ok_or_else(|| bad("float64", &value))?),
                    v => return Err(bad("float64", v)),
                }),
                Buffer::Str(b) => b.push(match value {
                    Value::NULL => None,
                    Value::Bytes(x) => Some(
                        String::from_utf8(x)
                            .map_err(|e| bad("UTF-8 string", &Value::Bytes(e.into_bytes())))?,
                    ),
                    v => return Err(bad("string", &v)),
                }),
                Buffer::Date(b) => b.push(match &value {
                    _ if null => None,
                    v => Some(date_to_days(
                        as_datetime(v).ok_or_else(|| bad("date", v))?.date(),
                    )),
                }),
                Buffer::Datetime(tu, tz, b) => b.push(match &value {
                    _ if null => None,
                    v => {
                        let wall = as_datetime(v).ok_or_else(|| bad("datetime", v))?;
                        Some(
                            instant(wall, *tu, tz.as_ref())
                                .ok_or_else(|| bad("a time that exists in the column's zone", v))?,
                        )
                    }
                }),
                Buffer::Duration(b) => b.push(match &value {
                    _ if null => None,
                    Value::Int(i) => Some(*i),
                    Value::UInt(u) => Some(i64::try_from(*u).map_err(|_| bad("duration", &value))?),
                    Value::Bytes(x) => Some(parse(x).ok_or_else(|| bad("duration", &value))?),
                    v => return Err(bad("duration", v)),
                }),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The frame, every column of the schema's dtype.
    pub(crate) fn finish(self) -> Result<DataFrame, MartError> {
        let table = self.table;
        let err = |source| MartError::Polars {
            table: table.clone(),
            action: "building the frame read back",
            source,
        };
        let mut columns = Vec::with_capacity(self.buffers.len());
        for (buffer, col) in self.buffers.into_iter().zip(&self.schema.columns) {
            let name = col.name.as_str().into();
            let c = match buffer {
                Buffer::Bool(v) => Column::new(name, v),
                Buffer::Int(v) | Buffer::Duration(v) => Column::new(name, v),
                Buffer::UInt(v) => Column::new(name, v),
                Buffer::F32(v) => Column::new(name, v),
                Buffer::F64(v) => Column::new(name, v),
                Buffer::Str(v) => Column::new(name, v),
                Buffer::Date(v) => Column::new(name, v),
                Buffer::Datetime(_, _, v) => Column::new(name, v),
            };
            // Strict: a value that does not fit the narrower type is an error, never a null.
            let c = if c.dtype() == &col.dtype {
                c
            } else {
                c.strict_cast(&col.dtype).map_err(err)?
            };
            columns.push(c);
        }
        DataFrame::new(self.rows, columns).map_err(err)
    }
}

fn parse<T: FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// A DATE or DATETIME value as a wall-clock time.
pub(crate) fn as_datetime(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::Date(y, mo, d, h, mi, s, us) => {
            NaiveDate::from_ymd_opt(i32::from(*y), u32::from(*mo), u32::from(*d))?
                .and_hms_micro_opt(u32::from(*h), u32::from(*mi), u32::from(*s), *us)
        }
        Value::Bytes(x) => {
            let s = std::str::from_utf8(x).ok()?.trim();
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
        }
        _ => None,
    }
}

/// The instant a wall-clock time of `tz` (UTC when `None`) stands for, in `tu` since 1970.
fn instant(wall: NaiveDateTime, tu: TimeUnit, tz: Option<&chrono_tz::Tz>) -> Option<i64> {
    let utc = match tz {
        Some(tz) => tz.from_local_datetime(&wall).earliest()?.naive_utc(),
        None => wall,
    }
    .and_utc();
    match tu {
        TimeUnit::Milliseconds => Some(utc.timestamp_millis()),
        TimeUnit::Microseconds => Some(utc.timestamp_micros()),
        TimeUnit::Nanoseconds => utc.timestamp_nanos_opt(),
    }
}

/// What a value is, for messages; string contents are not repeated (they may be long).
fn kind(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => format!("a {}-byte string", b.len()),
        Value::Int(i) => format!("integer {i}"),
        Value::UInt(u) => format!("unsigned integer {u}"),
        Value::Float(f) => format!("float {f}"),
        Value::Double(d) => format!("double {d}"),
        Value::Date(..) => "a date/time".into(),
        Value::Time(..) => "a TIME".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mart::encode::encode_rows;
    use crate::mart::tests::{tiny_frame, tiny_schema};

    #[test]
    fn encoded_rows_decode_to_the_same_frame() {
        let s = tiny_schema();
        let df = tiny_frame();
        let w = s.columns.len();
        let values = encode_rows(&s, "mart_tiny", &df, 0, df.height()).unwrap();
        let mut b = FrameBuilder::new(&s, "mart_tiny").unwrap();
        for row in values.chunks(w) {
            b.push_row(row.to_vec()).unwrap();
        }
        let back = b.finish().unwrap();
        assert_eq!(back.schema().as_ref(), &s.polars_schema());
        assert!(back.equals_missing(&df), "{back}\n{df}");
    }

    #[test]
    fn text_protocol_values_decode_too() {
        let s = tiny_schema();
        let mut b = FrameBuilder::new(&s, "mart_tiny").unwrap();
        let t = |x: &str| Value::Bytes(x.as_bytes().to_vec());
        b.push_row(vec![
            t("2026-01-03"),
            t("A"),
            t("'); DROP TABLE x; --"),
            t("1990000"),
            t("7"),
            t("0.25"),
            t("2023-11-14 22:13:20.123"),
            t("2023-11-15 07:13:20.123456"),
            t("1500"),
            t("1"),
            t("-3"),
            t("1.5"),
            t("18446744073709551615"),
        ])
        .unwrap();
        let df = b.finish().unwrap();
        let expected = tiny_frame().slice(0, 1);
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let s = tiny_schema();
        let mut b = FrameBuilder::new(&s, "mart_tiny").unwrap();
        let mut row = encode_rows(&s, "mart_tiny", &tiny_frame(), 0, 1).unwrap();
        b.push_row(row.clone()).unwrap();
        row[4] = Value::Int(-1);
        let e = b.push_row(row.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mysql table mart_tiny, row 1, column \"n\": cannot read integer -1 as uint64"
        );
        // n is UInt32: a value beyond it fails the strict cast instead of becoming null.
        let mut b = FrameBuilder::new(&s, "mart_tiny").unwrap();
        row[4] = Value::UInt(u64::from(u32::MAX) + 1);
        b.push_row(row).unwrap();
        assert!(b.finish().is_err());
    }

    #[test]
    fn empty_result_is_a_typed_empty_frame() {
        let s = tiny_schema();
        let df = FrameBuilder::new(&s, "mart_tiny")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(df.height(), 0);
        assert_eq!(df.schema().as_ref(), &s.polars_schema());
    }
}
