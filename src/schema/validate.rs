//! Checking a frame against its table schema before it is written.
//!
//! Every check works on whole columns (dtype, cached null counts, one length
//! kernel) so validating a 10-million-row partition costs milliseconds, and
//! stops at the first problem so the message names exactly one column.

use polars::prelude::{ChunkAgg, DataFrame, DataType, StringNameSpaceImpl};

use super::types::dtype_name;
use super::{SchemaError, TableSchema};

impl TableSchema {
    /// Validates a frame of ONE partition before it is written. `partition` is
    /// only a label for messages, e.g. "dt=2026-01-03".
    ///
    /// The partition column may be absent (the lake keeps it in the path); if
    /// present it is checked like any other column: date, no nulls.
    pub fn validate(&self, df: &DataFrame, partition: &str) -> Result<(), SchemaError> {
        let table = self.qualified_name();
        let table = table.as_str();

        for col in &self.columns {
            if df.column(&col.name).is_err() && !self.is_partition(&col.name) {
                return Err(SchemaError::MissingColumn {
                    table: table.into(),
                    partition: partition.into(),
                    column: col.name.clone(),
                    expected: col.type_name.clone(),
                });
            }
        }

        for c in df.columns() {
            if self.column(c.name()).is_none() {
                return Err(SchemaError::UnexpectedColumn {
                    table: table.into(),
                    partition: partition.into(),
                    column: c.name().to_string(),
                    found: dtype_name(c.dtype()),
                });
            }
        }

        for col in &self.columns {
            let Ok(c) = df.column(&col.name) else {
                continue;
            };
            if c.dtype() != &col.dtype {
                return Err(SchemaError::WrongType {
                    table: table.into(),
                    partition: partition.into(),
                    column: col.name.clone(),
                    expected: col.type_name.clone(),
                    found: dtype_name(c.dtype()),
                });
            }
        }

        // Keys first: a null key is the failure that corrupts downstream joins.
        let mut ordered: Vec<_> = self.columns.iter().filter(|c| !c.nullable).collect();
        ordered.sort_by_key(|c| !self.is_key(&c.name));
        for col in ordered {
            let Ok(c) = df.column(&col.name) else {
                continue;
            };
            let nulls = c.null_count();
            if nulls > 0 {
                return Err(SchemaError::NullValues {
                    table: table.into(),
                    partition: partition.into(),
                    column: col.name.clone(),
                    nulls,
                    rows: df.height(),
                    key: self.is_key(&col.name),
                });
            }
        }

        for col in &self.columns {
            let (Some(max), DataType::String) = (col.max_length, &col.dtype) else {
                continue;
            };
            let Ok(c) = df.column(&col.name) else {
                continue;
            };
            let check_err = |e: polars::prelude::PolarsError| SchemaError::Check {
                table: table.into(),
                partition: partition.into(),
                column: col.name.clone(),
                message: e.to_string(),
            };
            let ca = c.str().map_err(check_err)?;
            // Bytes bound chars from above and are far cheaper: count chars only when needed.
            if ca.str_len_bytes().max().unwrap_or(0) <= max {
                continue;
            }
            let longest = ca.str_len_chars().max().unwrap_or(0);
            if longest > max {
                return Err(SchemaError::TooLong {
                    table: table.into(),
                    partition: partition.into(),
                    column: col.name.clone(),
                    max_length: max,
                    found: longest,
                });
            }
        }
        Ok(())
    }
}
