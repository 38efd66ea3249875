//! Errors of the MySQL mart writer, and the URL redaction every message goes through.
//!
//! Each variant names the MySQL table and, where it applies, the partition, the row of the
//! frame (0-based, as `DataFrame::get_row` counts) and the column, because whoever reads the
//! message is looking at a failed nightly run and needs to know which mart, which day and which
//! value to open. No variant ever holds a connection URL as given: only [`redact_url`]'s output.

use std::fmt;

use crate::schema::SchemaError;

/// Everything that can go wrong writing or reading a mart in MySQL.
#[derive(Debug, thiserror::Error)]
pub enum MartError {
    /// The URL is malformed or the server cannot be reached or refuses the login.
    #[error("mysql {url}: cannot connect: {message}")]
    Connect {
        /// The URL with its password replaced by `***`.
        url: String,
        /// The driver's message, with the password removed should it ever appear in it.
        message: String,
    },

    /// The table exists in MySQL with other columns than its schema declares, so
    /// `CREATE TABLE IF NOT EXISTS` left it alone and every insert would fail.
    #[error(
        "mysql table {table} exists with columns that differ from schemas/{layer}/{name}.toml: {problem}; drop or migrate the table"
    )]
    TableMismatch {
        table: String,
        layer: String,
        name: String,
        problem: String,
    },

    /// The call does not fit the table (dates for an unpartitioned table, a row whose partition
    /// is not among the dates being replaced, ...). Nothing was written.
    #[error("mysql table {table}: {problem}")]
    Usage { table: String, problem: String },

    /// The frame does not match the table's schema (missing or extra column, wrong type).
    /// Nothing was written.
    #[error("mysql table {table}: {source}")]
    Schema {
        table: String,
        #[source]
        source: SchemaError,
    },

    /// One value cannot be stored: a null in a non-null column, a string longer than the
    /// column, a NaN, a date MySQL cannot hold. Nothing was written.
    #[error("mysql table {table}, partition {partition}, row {row}, column {column:?}: {problem}")]
    BadValue {
        table: String,
        /// `dt=YYYY-MM-DD`, or `(unpartitioned)`.
        partition: String,
        /// 0-based row of the frame given to the write.
        row: usize,
        column: String,
        problem: String,
    },

    /// A statement of a write failed; the transaction was rolled back, so the table holds
    /// what it held before the call.
    #[error(
        "mysql table {table}, {partitions}: {action} failed{at}; the write was rolled back, the previous rows stay: {source}"
    )]
    Write {
        table: String,
        /// `partitions dt=2026-01-01..dt=2026-01-03 (3)` or `whole table`.
        partitions: String,
        /// `delete`, `insert`, `commit`, ...
        action: &'static str,
        /// Where in the frame: a row and column when the server named them, else the batch.
        at: RowSpan,
        #[source]
        source: mysql_async::Error,
    },

    /// A statement outside a write failed (create, read, close).
    #[error("mysql table {table}: {action} failed: {source}")]
    Query {
        table: String,
        action: &'static str,
        #[source]
        source: mysql_async::Error,
    },

    /// A value read back does not fit the schema's type (the table was changed by hand?).
    #[error("mysql table {table}, row {row}, column {column:?}: cannot read {found} as {expected}")]
    Decode {
        table: String,
        /// 0-based row of the result, in primary-key order.
        row: usize,
        column: String,
        expected: String,
        found: String,
    },

    /// Polars refused to build or reshape a frame.
    #[error("mysql table {table}: {action}: {source}")]
    Polars {
        table: String,
        action: &'static str,
        #[source]
        source: polars::prelude::PolarsError,
    },
}

/// Rows of the frame a failed statement covered, and the exact row and column when the server
/// said (`Data too long for column 'x' at row 3`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowSpan {
    /// First and last frame row (0-based, inclusive) of the failed batch; `None` outside inserts.
    pub rows: Option<(usize, usize)>,
    /// The frame row the server named.
    pub row: Option<usize>,
    /// The column the server named.
    pub column: Option<String>,
}

impl fmt::Display for RowSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.row, &self.column, &self.rows) {
            (Some(r), Some(c), _) => write!(f, " at row {r}, column {c:?}"),
            (Some(r), None, _) => write!(f, " at row {r}"),
            (None, Some(c), Some((a, b))) => write!(f, " in rows {a}..={b}, column {c:?}"),
            (None, Some(c), None) => write!(f, " in column {c:?}"),
            (None, None, Some((a, b))) => write!(f, " in rows {a}..={b}"),
            (None, None, None) => Ok(()),
        }
    }
}

impl MartError {
    /// The 0-based frame row the error is about, when one is known.
    pub fn row(&self) -> Option<usize> {
        match self {
            MartError::BadValue { row, .. } | MartError::Decode { row, .. } => Some(*row),
            MartError::Write { at, .. } => at.row,
            _ => None,
        }
    }

    /// The column the error is about, when one is known.
    pub fn column(&self) -> Option<&str> {
        match self {
            MartError::BadValue { column, .. } | MartError::Decode { column, .. } => Some(column),
            MartError::Write { at, .. } => at.column.as_deref(),
            _ => None,
        }
    }
}

/// A MySQL URL fit for logs and messages: the password becomes `***`, and so does any query
/// parameter whose name mentions a password. A string that does not parse as a URL is not
/// echoed at all (it might be a password pasted in the wrong place).
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url.trim()) else {
        return "<unparseable MySQL URL>".to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<MySQL URL>".to_owned();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = k.to_ascii_lowercase().contains("pass");
                (
                    k.into_owned(),
                    if secret {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Removes the URL's password (raw and percent-decoded) from a driver message, in case a
/// driver ever echoes it; used on every connect-time message.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return message.to_owned();
    };
    let mut out = message.to_owned();
    let mut secrets: Vec<String> = Vec::new();
    if let Some(p) = parsed.password().filter(|p| !p.is_empty()) {
        secrets.push(p.to_owned());
        if let Ok(decoded) = percent_decode(p) {
            secrets.push(decoded);
        }
    }
    for (k, v) in parsed.query_pairs() {
        if k.to_ascii_lowercase().contains("pass") && !v.is_empty() {
            secrets.push(v.into_owned());
        }
    }
    // Longest first, so a secret containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(&s, "***");
    }
    out
}

/// `%xx` decoding of a URL component (the `url` crate leaves userinfo encoded).
fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits fit a byte.
            out.push(((h << 4) | l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_password_and_password_parameters() {
        assert_eq!(
            redact_url("mysql://ltv:hunter2@db.internal:3306/marts"),
            "mysql://ltv:***@db.internal:3306/marts"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        let r = redact_url("mysql://u@h/db?password=s3cret&stmt_cache_size=64");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("stmt_cache_size=64"), "{r}");
        let r = redact_url("mysql://u:p%40ss%3Aw@h/db");
        assert!(!r.contains("p%40ss") && !r.contains("p@ss"), "{r}");
        assert_eq!(redact_url("hunter2"), "<unparseable MySQL URL>");
    }

    #[test]
    fn scrub_removes_raw_and_decoded_password() {
        let url = "mysql://u:p%40ss@h/db";
        assert_eq!(
            scrub("bad login p@ss and p%40ss", url),
            "bad login *** and ***"
        );
        assert_eq!(scrub("nothing here", "mysql://u@h/db"), "nothing here");
    }

    #[test]
    fn row_span_reads_well() {
        let at = RowSpan {
            rows: Some((500, 999)),
            row: None,
            column: None,
        };
        assert_eq!(at.to_string(), " in rows 500..=999");
        let at = RowSpan {
            rows: Some((500, 999)),
            row: Some(502),
            column: Some("campaign_name".into()),
        };
        assert_eq!(at.to_string(), " at row 502, column \"campaign_name\"");
    }
}
