//! Human-readable descriptions and MySQL DDL of table schemas.

use std::fmt::Write as _;

use polars::prelude::{DataType, TimeUnit};

use super::parse::{DEFAULT_VARCHAR, TEXT_FROM_LENGTH};
use super::types::unit_str;
use super::{ColumnSchema, Layer, Registry, TableSchema};

/// Descriptions may be written as multi-line TOML strings; output is one line each.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A MySQL string literal body: quotes doubled, backslashes escaped (the
/// default sql_mode treats `\` as an escape character).
fn sql_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

fn time_unit_word(tu: TimeUnit) -> &'static str {
    match tu {
        TimeUnit::Milliseconds => "milliseconds",
        TimeUnit::Microseconds => "microseconds",
        TimeUnit::Nanoseconds => "nanoseconds",
    }
}

/// The bracketed note after a description: unit, currency, time zone.
fn annotation(col: &ColumnSchema) -> Option<String> {
    let mut parts = Vec::new();
    match (&col.unit, &col.currency_column) {
        (Some(u), Some(cur)) => parts.push(format!("{u} of `{cur}`")),
        (Some(u), None) => parts.push(u.clone()),
        (None, Some(cur)) => parts.push(format!("amount in `{cur}`")),
        (None, None) => {}
    }
    match &col.dtype {
        DataType::Datetime(_, Some(tz)) => parts.push(format!("time zone {tz}")),
        DataType::Datetime(_, None) => parts.push("naive, no time zone".to_string()),
        DataType::Duration(tu) => parts.push(format!("duration in {}", time_unit_word(*tu))),
        _ => {}
    }
    (!parts.is_empty()).then(|| format!("[{}]", parts.join("; ")))
}

/// TEXT's limit in bytes, whatever the declared length.
const TEXT_MAX_BYTES: u32 = 65_535;

impl ColumnSchema {
    /// The longest string MySQL stores in this column as `(characters, bytes)`, for string
    /// columns: VARCHAR(n) holds n characters (utf8mb4 makes that at most 4n bytes, within the
    /// row limit), TEXT 65,535 bytes. The mart writer checks both before sending a row so that a
    /// value too long is reported with its row rather than as a server error about a batch.
    pub fn mysql_string_limit(&self) -> Option<(u32, Option<u32>)> {
        if self.dtype != DataType::String {
            return None;
        }
        let n = self.max_length.unwrap_or(DEFAULT_VARCHAR);
        Some(if n >= TEXT_FROM_LENGTH {
            (n, Some(TEXT_MAX_BYTES))
        } else {
            (n, None)
        })
    }
}

fn mysql_type(col: &ColumnSchema) -> String {
    match &col.dtype {
        DataType::Boolean => "TINYINT(1)".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::String => {
            let n = col.max_length.unwrap_or(DEFAULT_VARCHAR);
            if n >= TEXT_FROM_LENGTH {
                "TEXT".into()
            } else {
                format!("VARCHAR({n})")
            }
        }
        DataType::Date => "DATE".into(),
        DataType::Datetime(TimeUnit::Milliseconds, _) => "DATETIME(3)".into(),
        // MySQL stops at microseconds; nanosecond values lose their last digits.
        DataType::Datetime(_, _) => "DATETIME(6)".into(),
        DataType::Duration(_) => "BIGINT".into(),
        // parse_type admits nothing else; TEXT is the least harmful fallback.
        _ => "TEXT".into(),
    }
}

fn column_comment(col: &ColumnSchema) -> String {
    let d = one_line(&col.description);
    match annotation(col) {
        Some(a) => format!("{d} {a}"),
        None => d,
    }
}

impl TableSchema {
    /// MySQL table name: layers share one database, so the layer prefixes the name.
    pub fn mysql_table_name(&self) -> String {
        format!("{}_{}", self.layer, self.name)
    }

    /// Grain sentence shared by `describe` and the DDL table comment.
    fn grain(&self) -> Option<String> {
        (!self.primary_key.is_empty())
            .then(|| format!("Grain: one row per {}.", self.primary_key.join(", ")))
    }

    /// `CREATE TABLE IF NOT EXISTS` for this table, ending in `;`.
    ///
    /// The collation is `utf8mb4_bin`: strings compare and sort by code point, so keys that
    /// differ only in case or accents (`Summer` and `summer`, two real campaign ids) stay two
    /// rows, and what is written is what reads back.
    pub fn mysql_ddl(&self) -> String {
        let mut lines: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "  `{}` {} {} COMMENT '{}'",
                    c.name,
                    mysql_type(c),
                    if c.nullable { "NULL" } else { "NOT NULL" },
                    sql_string(&column_comment(c))
                )
            })
            .collect();
        if !self.primary_key.is_empty() {
            let key: Vec<String> = self.primary_key.iter().map(|k| format!("`{k}`")).collect();
            lines.push(format!("  PRIMARY KEY ({})", key.join(", ")));
        }
        let mut comment = one_line(&self.description);
        if let Some(g) = self.grain() {
            comment = format!("{comment} {g}");
        }
        format!(
            "CREATE TABLE IF NOT EXISTS `{}` (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='{}';\n",
            self.mysql_table_name(),
            lines.join(",\n"),
            sql_string(&comment)
        )
    }

    /// Multi-line description for the CLI: header, then an aligned column table.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.qualified_name());
        let _ = writeln!(out, "  {}", one_line(&self.description));
        let _ = writeln!(
            out,
            "  partition:   {}",
            self.partition.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(
            out,
            "  primary key: {}",
            if self.primary_key.is_empty() {
                "(none)".to_string()
            } else {
                self.primary_key.join(", ")
            }
        );
        let _ = writeln!(out);

        let header = ["column", "type", "null", "unit", "description"];
        let rows: Vec<[String; 5]> = self
            .columns
            .iter()
            .map(|c| {
                let mut name = c.name.clone();
                if self.is_key(&c.name) {
                    name.push_str(" (key)");
                }
                let unit = match (&c.unit, &c.currency_column) {
                    (Some(u), Some(cur)) => format!("{u} of {cur}"),
                    (Some(u), None) => u.clone(),
                    (None, Some(cur)) => format!("in {cur}"),
                    (None, None) => match &c.dtype {
                        DataType::Duration(tu) => unit_str(*tu).to_string(),
                        _ => String::new(),
                    },
                };
                [
                    name,
                    c.type_name.clone(),
                    if c.nullable { "null" } else { "not null" }.to_string(),
                    unit,
                    one_line(&c.description),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: [&str; 5]| {
            let mut l = String::from(" ");
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    let _ = write!(l, " {cell}");
                } else {
                    let _ = write!(l, " {cell:<w$} ", w = widths[i]);
                }
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(header);
        let rule = widths.map(|w| "-".repeat(w));
        line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4]]);
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        out
    }
}

/// DDL of every mart table, sorted by name, separated by blank lines.
pub fn mart_ddl(registry: &Registry) -> String {
    registry
        .layer(Layer::Mart)
        .map(TableSchema::mysql_ddl)
        .collect::<Vec<_>>()
        .join("\n")
}
