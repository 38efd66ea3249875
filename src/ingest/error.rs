//! The error every parser of a source's wire format returns: it names the source and stream,
//! the partition, and where it can the row and column, so a person can find the bad input.

use std::fmt;

/// A body that could not be turned into a raw frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Source and stream, e.g. `appsflyer.installs_report`.
    pub stream: String,
    /// The partition being pulled, e.g. `dt=2026-01-03` or `2026-01-03T00..06`.
    pub partition: String,
    /// 1-based data row (line of a JSON Lines body, CSV row after the header), when known.
    pub row: Option<u64>,
    /// The column or field, when known.
    pub column: Option<String>,
    pub message: String,
    /// The body is incomplete (cut short in transit): pulling again may succeed, and the
    /// partial data must never be landed.
    pub retryable: bool,
}

impl ParseError {
    pub fn new(stream: &str, partition: &str, message: impl Into<String>) -> Self {
        ParseError {
            stream: stream.to_string(),
            partition: partition.to_string(),
            row: None,
            column: None,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    pub fn in_column(mut self, column: &str) -> Self {
        self.column = Some(column.to_string());
        self
    }

    /// Marks the body as cut short: retry, never land.
    pub fn truncated(mut self) -> Self {
        self.retryable = true;
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.stream, self.partition)?;
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.message)?;
        if self.retryable {
            write!(f, " (incomplete body; retryable)")?;
        }
        Ok(())
    }
}

/// Reads a JSON body as a `serde_json::Value`. A body that ends early was cut in transit and
/// fails as retryable; any other problem is named by kind and position, never by quoting the
/// body (it may hold tokens). `what` names the body in the message ("the report body").
pub fn json_body(
    body: &[u8],
    stream: &str,
    partition: &str,
    what: &str,
) -> Result<serde_json::Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        let problem = ParseError::new(
            stream,
            partition,
            format!(
                "{what} is not JSON ({}, line {} column {})",
                crate::ingest::oauth::json_problem(&e),
                e.line(),
                e.column()
            ),
        );
        if e.is_eof() {
            problem.truncated()
        } else {
            problem
        }
    })
}
