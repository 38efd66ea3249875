//! Reading a transaction file into validated columns `customer` (String), `date` (Date) and
//! optionally `amount` (Float64), or an error naming the file, the 1-based data row and the
//! column at fault.
//!
//! The file type comes from the extension: `.csv` (with a header row; every column is read as
//! text and converted here, so a bad cell is reported rather than silently nulled) or
//! `.parquet`/`.pq` (dates may be Date, Datetime or text; amounts numbers or text). Values are
//! checked one by one in Rust because the message must point at the first bad cell; everything
//! after validation is a Polars plan (see `summary`).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};
use polars::prelude::*;
use regex::Regex;

use super::BtydError;

/// Column names of the validated frame.
pub const CUSTOMER: &str = "customer";
pub const DATE: &str = "date";
pub const AMOUNT: &str = "amount";

/// ISO dates, the default of `--date-format`.
pub const DEFAULT_DATE_FORMAT: &str = "%Y-%m-%d";

/// Where the transactions are and which columns hold what.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionSource {
    pub path: PathBuf,
    pub customer_col: String,
    pub date_col: String,
    /// chrono `strftime` format of dates stored as text. A time of day after the date is
    /// accepted and ignored (`2024-03-01 14:05:00`, `2024-03-01T14:05:00.25+09:00`): the
    /// purchase counts on the calendar date as written.
    pub date_format: String,
    /// Spend per transaction; without it only BG/NBD is fitted.
    pub amount_col: Option<String>,
}

/// Reads and validates the file. Errors, in the order they are checked: file type, file
/// access, empty file, missing columns, then values column by column (customer, date, amount),
/// reporting the first bad row of the first bad column.
pub fn read(source: &TransactionSource) -> Result<DataFrame, BtydError> {
    let file = source.path.as_path();
    check_date_format(&source.date_format)?;
    let raw = match Format::of(file)? {
        Format::Csv => read_csv(file)?,
        Format::Parquet => read_parquet(file)?,
    };
    if raw.height() == 0 {
        return Err(BtydError::Empty { file: file.into() });
    }
    let mut wanted = vec![
        (source.customer_col.as_str(), "--customer-col"),
        (source.date_col.as_str(), "--date-col"),
    ];
    if let Some(amount) = &source.amount_col {
        wanted.push((amount.as_str(), "--amount-col"));
    }
    for (column, option) in wanted {
        if raw.column(column).is_err() {
            return Err(BtydError::MissingColumn {
                file: file.into(),
                column: column.into(),
                option,
                available: raw
                    .get_column_names()
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
            });
        }
    }
    let get = |name: &str| raw.column(name).map_err(plan);
    let mut columns = vec![
        customers(file, get(&source.customer_col)?)?,
        dates(file, get(&source.date_col)?, &source.date_format)?,
    ];
    if let Some(amount) = &source.amount_col {
        columns.push(amounts(file, get(amount)?)?);
    }
    DataFrame::new_infer_height(columns).map_err(plan)
}

fn plan(source: PolarsError) -> BtydError {
    BtydError::Plan {
        step: "reading the transactions",
        source,
    }
}

enum Format {
    Csv,
    Parquet,
}

impl Format {
    fn of(file: &Path) -> Result<Self, BtydError> {
        let extension = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(BtydError::UnsupportedFormat { file: file.into() }),
        }
    }
}

fn read_csv(file: &Path) -> Result<DataFrame, BtydError> {
    let meta = std::fs::metadata(file).map_err(|source| BtydError::Io {
        file: file.into(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(BtydError::Empty { file: file.into() });
    }
    CsvReadOptions::default()
        .with_has_header(true)
        // Everything as text: conversion failures become row-level errors below instead of
        // nulls or a type guessed from the first rows.
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .try_into_reader_with_file_path(Some(file.into()))
        .and_then(|reader| reader.finish())
        .map_err(|source| BtydError::Read {
            file: file.into(),
            format: "CSV",
            source,
        })
}

fn read_parquet(file: &Path) -> Result<DataFrame, BtydError> {
    let handle = std::fs::File::open(file).map_err(|source| BtydError::Io {
        file: file.into(),
        source,
    })?;
    ParquetReader::new(handle)
        .finish()
        .map_err(|source| BtydError::Read {
            file: file.into(),
            format: "Parquet",
            source,
        })
}

/// A format chrono cannot even tokenise would fail on every row; say so once instead.
fn check_date_format(format: &str) -> Result<(), BtydError> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(BtydError::BadDateFormat {
            format: format.into(),
        });
    }
    Ok(())
}

/// 1-based row of the first null, if any.
fn first_null(s: &Series) -> Option<usize> {
    s.is_null()
        .iter()
        .position(|null| null == Some(true))
        .map(|i| i + 1)
}

fn customers(file: &Path, column: &Column) -> Result<Column, BtydError> {
    let s = column.as_materialized_series();
    let text = match s.dtype() {
        DataType::String => s.clone(),
        dtype if dtype.is_integer() || dtype.is_categorical() => {
            s.cast(&DataType::String).map_err(plan)?
        }
        other => {
            return Err(wrong_type(file, column, other, "text or integers"));
        }
    };
    if let Some(row) = first_null(&text) {
        return Err(missing(file, column, row));
    }
    Ok(text.with_name(CUSTOMER.into()).into())
}

fn dates(file: &Path, column: &Column, format: &str) -> Result<Column, BtydError> {
    let s = column.as_materialized_series();
    let dates = match s.dtype() {
        DataType::Date => s.clone(),
        // Zoned timestamps count on their date in their own zone, like the text form does.
        DataType::Datetime(_, _) => s
            .clone()
            .into_frame()
            .lazy()
            .select([col(s.name().clone()).dt().date()])
            .collect()
            .and_then(|df| Ok(df.column(s.name())?.as_materialized_series().clone()))
            .map_err(plan)?,
        DataType::String => {
            let text = s.str().map_err(plan)?;
            let mut days = Vec::with_capacity(text.len());
            for (i, value) in text.iter().enumerate() {
                let Some(value) = value else {
                    return Err(missing(file, column, i + 1));
                };
                match parse_date(value, format) {
                    Some(date) => days.push((date - NaiveDate::default()).num_days() as i32),
                    None => {
                        return Err(BtydError::BadDate {
                            file: file.into(),
                            row: i + 1,
                            column: column.name().to_string(),
                            value: value.into(),
                            format: format.into(),
                        });
                    }
                }
            }
            Series::new(DATE.into(), days).into_date()
        }
        other => return Err(wrong_type(file, column, other, "dates, datetimes or text")),
    };
    if let Some(row) = first_null(&dates) {
        return Err(missing(file, column, row));
    }
    Ok(dates.with_name(DATE.into()).into())
}

/// What may follow the date in a text value: a time of day with optional seconds, fraction and
/// UTC offset.
static TIME_OF_DAY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?|UTC)?$").ok()
});

/// The calendar date of `value` read with `format`; a trailing time of day is ignored.
fn parse_date(value: &str, format: &str) -> Option<NaiveDate> {
    let value = value.trim();
    let (date, rest) = NaiveDate::parse_and_remainder(value, format).ok()?;
    let time_follows = || TIME_OF_DAY.as_ref().is_some_and(|time| time.is_match(rest));
    (rest.is_empty() || time_follows()).then_some(date)
}

fn amounts(file: &Path, column: &Column) -> Result<Column, BtydError> {
    let s = column.as_materialized_series();
    let bad = |row: usize, value: String| BtydError::BadAmount {
        file: file.into(),
        row,
        column: column.name().to_string(),
        value,
    };
    let values: Vec<f64> = match s.dtype() {
        DataType::String => {
            let text = s.str().map_err(plan)?;
            let mut values = Vec::with_capacity(text.len());
            for (i, value) in text.iter().enumerate() {
                let Some(value) = value else {
                    return Err(missing(file, column, i + 1));
                };
                match value.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => values.push(v),
                    _ => return Err(bad(i + 1, value.into())),
                }
            }
            values
        }
        dtype if dtype.is_primitive_numeric() => {
            let numbers = s.cast(&DataType::Float64).map_err(plan)?;
            let numbers = numbers.f64().map_err(plan)?;
            let mut values = Vec::with_capacity(numbers.len());
            for (i, value) in numbers.iter().enumerate() {
                match value {
                    None => return Err(missing(file, column, i + 1)),
                    Some(v) if !v.is_finite() => return Err(bad(i + 1, v.to_string())),
                    Some(v) => values.push(v),
                }
            }
            values
        }
        other => return Err(wrong_type(file, column, other, "numbers or text")),
    };
    if let Some((i, &value)) = values.iter().enumerate().find(|(_, v)| **v < 0.0) {
        return Err(BtydError::NegativeAmount {
            file: file.into(),
            row: i + 1,
            column: column.name().to_string(),
            value,
        });
    }
    Ok(Column::new(AMOUNT.into(), values))
}

fn missing(file: &Path, column: &Column, row: usize) -> BtydError {
    BtydError::MissingValue {
        file: file.into(),
        row,
        column: column.name().to_string(),
    }
}

fn wrong_type(file: &Path, column: &Column, found: &DataType, expected: &'static str) -> BtydError {
    BtydError::WrongType {
        file: file.into(),
        column: column.name().to_string(),
        found: found.to_string(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use std::io::Write;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn dates_with_a_time_of_day_count_on_their_date() {
        let iso = DEFAULT_DATE_FORMAT;
        for value in [
            "2024-03-01",
            " 2024-03-01 ",
            "2024-03-01 14:05",
            "2024-03-01 14:05:00",
            "2024-03-01T14:05:00.125",
            "2024-03-01T23:59:59Z",
            "2024-03-01T23:59:59+09:00",
            "2024-03-01 08:00:00 UTC",
        ] {
            assert_eq!(parse_date(value, iso), Some(date("2024-03-01")), "{value}");
        }
        for value in [
            "2024-03-01x",
            "2024-13-01",
            "01/03/2024",
            "2024-03-01 lunch",
            "",
        ] {
            assert_eq!(parse_date(value, iso), None, "{value}");
        }
        assert_eq!(parse_date("19970101", "%Y%m%d"), Some(date("1997-01-01")));
        assert_eq!(
            parse_date("01/03/2024", "%d/%m/%Y"),
            Some(date("2024-03-01"))
        );
        assert!(check_date_format("%Y-%m-%").is_err());
    }

    fn csv(body: &str) -> (tempfile::TempDir, TransactionSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let source = TransactionSource {
            path,
            customer_col: "who".into(),
            date_col: "when".into(),
            date_format: DEFAULT_DATE_FORMAT.into(),
            amount_col: Some("spent".into()),
        };
        (dir, source)
    }

    #[test]
    fn reads_a_valid_csv() {
        let (_dir, source) =
            csv("who,when,spent,other\n7,2024-01-02,3.5,x\nab,2024-01-03 10:00,0,y\n");
        let df = read(&source).unwrap();
        assert_eq!(df.get_column_names(), [CUSTOMER, DATE, AMOUNT]);
        assert_eq!(df.column(DATE).unwrap().dtype(), &DataType::Date);
        assert_eq!(df.column(AMOUNT).unwrap().f64().unwrap().get(0), Some(3.5));
        assert_eq!(
            df.column(CUSTOMER).unwrap().str().unwrap().get(1),
            Some("ab")
        );
    }

    #[test]
    fn bad_cells_are_named_by_row_and_column() {
        let cases = [
            ("who,when,spent\n", "no transactions"),
            ("", "no transactions"),
            (
                "who,date,spent\na,2024-01-01,1\n",
                "no column \"when\" (given as --date-col)",
            ),
            (
                "who,when,spent\na,2024-01-01,1\nb,2024-02-30,1\n",
                "row 2, column \"when\": cannot read \"2024-02-30\"",
            ),
            (
                "who,when,spent\na,2024-01-01,1\nb,2024-01-02,-4.5\n",
                "row 2, column \"spent\": negative amount -4.5",
            ),
            (
                "who,when,spent\na,2024-01-01,1\nb,2024-01-02,12 EUR\n",
                "row 2, column \"spent\": \"12 EUR\" is not a number",
            ),
            (
                "who,when,spent\na,2024-01-01,1\n,2024-01-02,2\n",
                "row 2, column \"who\": the value is empty",
            ),
            (
                "who,when,spent\na,2024-01-01,NaN\n",
                "row 1, column \"spent\": \"NaN\" is not a number",
            ),
        ];
        for (body, want) in cases {
            let (_dir, source) = csv(body);
            let err = read(&source).unwrap_err().to_string();
            assert!(err.contains(want), "{body:?}: {err}");
            assert!(err.contains("tx.csv"), "{err}");
        }
        let (_dir, mut source) = csv("who,when\na,2024-01-01\n");
        source.path.set_extension("txt");
        assert!(matches!(
            read(&source),
            Err(BtydError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn reads_parquet_with_typed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.parquet");
        let days: Vec<i32> = vec![19_723, 19_724];
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("who".into(), [1i64, 2]),
            Series::new("when".into(), days).into_date().into(),
            Column::new("spent".into(), [3i32, 4]),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let source = TransactionSource {
            path,
            customer_col: "who".into(),
            date_col: "when".into(),
            date_format: DEFAULT_DATE_FORMAT.into(),
            amount_col: Some("spent".into()),
        };
        let out = read(&source).unwrap();
        assert_eq!(
            out.column(CUSTOMER).unwrap().str().unwrap().get(1),
            Some("2")
        );
        assert_eq!(out.column(AMOUNT).unwrap().f64().unwrap().get(1), Some(4.0));
        assert_eq!(
            out.column(DATE).unwrap().get(0).unwrap(),
            AnyValue::Date(19_723)
        );
    }
}
