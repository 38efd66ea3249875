//! Errors of reading a transaction file, summarising it and fitting the BTYD models.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use crate::model::ModelError;

/// Everything that can go wrong between a transaction file and fitted BTYD models.
///
/// Input variants name the file, and where a value is at fault the 1-based data row (the
/// header does not count) and the column, because the reader is usually an analyst who has to
/// open the file and fix that cell.
#[derive(Debug, thiserror::Error)]
pub enum BtydError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{}: unsupported file type; the transactions must be a .csv (with a header row) or a .parquet file",
        file.display()
    )]
    UnsupportedFormat { file: PathBuf },

    #[error("cannot read {} as {format}: {source}", file.display())]
    Read {
        file: PathBuf,
        format: &'static str,
        #[source]
        source: PolarsError,
    },

    #[error("{}: the file has no transactions (no data rows)", file.display())]
    Empty { file: PathBuf },

    #[error(
        "{}: no column {column:?} (given as {option}); the columns are: {}",
        file.display(),
        available.join(", ")
    )]
    MissingColumn {
        file: PathBuf,
        column: String,
        option: &'static str,
        available: Vec<String>,
    },

    #[error("{}: column {column:?} has type {found}, expected {expected}", file.display())]
    WrongType {
        file: PathBuf,
        column: String,
        found: String,
        expected: &'static str,
    },

    #[error("{}: row {row}, column {column:?}: the value is empty", file.display())]
    MissingValue {
        file: PathBuf,
        row: usize,
        column: String,
    },

    #[error(
        "date format {format:?} is not a valid strftime format (see --date-format; e.g. %Y-%m-%d or %d/%m/%Y)"
    )]
    BadDateFormat { format: String },

    #[error(
        "{}: row {row}, column {column:?}: cannot read {value:?} as a date with format {format:?}",
        file.display()
    )]
    BadDate {
        file: PathBuf,
        row: usize,
        column: String,
        value: String,
        format: String,
    },

    #[error("{}: row {row}, column {column:?}: {value:?} is not a number", file.display())]
    BadAmount {
        file: PathBuf,
        row: usize,
        column: String,
        value: String,
    },

    #[error(
        "{}: row {row}, column {column:?}: negative amount {value}; refunds are not purchases, remove them or net them into the purchase",
        file.display()
    )]
    NegativeAmount {
        file: PathBuf,
        row: usize,
        column: String,
        value: f64,
    },

    #[error(
        "{}: every transaction is after the calibration end {calibration_end}, so no customer can be calibrated",
        file.display()
    )]
    NothingToCalibrate {
        file: PathBuf,
        calibration_end: chrono::NaiveDate,
    },

    /// A Polars plan over already-validated data failed: a bug or resource problem, not bad
    /// input.
    #[error("{step}: {source}")]
    Plan {
        step: &'static str,
        #[source]
        source: PolarsError,
    },

    /// A summary handed to a model is impossible (e.g. recency beyond age).
    #[error("customer {index}: {reason}")]
    InvalidSummary { index: usize, reason: String },

    #[error("{model} parameters {reason}")]
    InvalidParams {
        model: &'static str,
        reason: &'static str,
    },

    #[error("cannot fit {model}: {reason}")]
    CannotFit {
        model: &'static str,
        reason: &'static str,
    },

    #[error(transparent)]
    Numerics(#[from] ModelError),
}
