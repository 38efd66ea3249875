//! The marts: the tables analysts and dashboards query, built from the clean layer and the
//! predictions, written to the lake's `mart/` layer and published from there to MySQL,
//! described by the same schema files (`schemas/mart/`).
//!
//! - build/: each mart as a lazy plan ([`build`]).
//! - stage.rs: the stage: build and write to the lake, publish the lake's marts to MySQL.
//! - totals.rs: each person's totals over `clean.user_daily`, the settled days' part kept
//!   between runs so a night reads the recent days only.
//! - [`MysqlMart`] (mysql.rs): connect, create tables from the schema DDL, replace partitions
//!   or whole tables inside one transaction each, read a mart back as a typed frame.
//! - encode.rs / decode.rs: Polars values to MySQL parameters and back, by the schema's types.
//! - sql.rs: statement text; identifiers from the schema only, every value a parameter.
//! - error.rs: [`MartError`], naming table, partition, row and column; [`redact_url`].
//!
//! Writes are idempotent per partition: a day written twice holds the second write's rows and
//! nothing else. A write that fails (bad value, lost connection, server error) leaves the rows
//! the table held before it.

pub mod build;
mod decode;
mod encode;
mod error;
mod mysql;
mod sql;
mod stage;
mod totals;

pub use error::{MartError, RowSpan, redact_url};
pub use mysql::{
    DEFAULT_ROWS_PER_INSERT, HeldPartition, MysqlMart, PartitionVersion, WriteSummary,
};
pub use stage::{
    MART_TABLES, MartOutput, MartStageError, MartWrite, PathRefresh, build_marts,
    clean_data_end_ms, mart_params, publish_marts, write_user_ltv,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    //! A small mart with one column of every type the schemas admit, shared by the unit tests.

    use polars::prelude::{Column, DataFrame, DataType, TimeUnit, TimeZone};

    use crate::schema::{Registry, TableSchema};

    const TINY: &str = r#"
name = "tiny"
layer = "mart"
description = "Every column type once."
partition = "dt"
primary_key = ["dt", "code"]

[[columns]]
name = "dt"
type = "date"
description = "Day."

[[columns]]
name = "code"
type = "string"
max_length = 16
description = "Key."

[[columns]]
name = "name"
type = "string"
max_length = 64
description = "Free text."

[[columns]]
name = "amount_micros"
type = "int64"
nullable = true
unit = "micros"
description = "Money."

[[columns]]
name = "n"
type = "uint32"
description = "Count."

[[columns]]
name = "share"
type = "float64"
nullable = true
description = "Share."

[[columns]]
name = "at"
type = "datetime[ms, UTC]"
description = "Instant."

[[columns]]
name = "local_at"
type = "datetime[us, Asia/Seoul]"
description = "Instant shown in Seoul."

[[columns]]
name = "wait"
type = "duration[ms]"
description = "Wait."

[[columns]]
name = "flag"
type = "bool"
description = "Flag."

[[columns]]
name = "small"
type = "int8"
description = "Small."

[[columns]]
name = "weight"
type = "float32"
nullable = true
description = "Weight."

[[columns]]
name = "big"
type = "uint64"
description = "Big."
"#;

    pub(crate) fn tiny_schema() -> TableSchema {
        Registry::from_sources(&[("mart/tiny.toml", TINY)])
            .unwrap()
            .get("mart.tiny")
            .unwrap()
            .clone()
    }

    /// Two rows: every value set in the first (with a hostile string), nulls and emoji in the
    /// second.
    pub(crate) fn tiny_frame() -> DataFrame {
        let ms = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
        let seoul = DataType::Datetime(
            TimeUnit::Microseconds,
            TimeZone::opt_try_new(Some("Asia/Seoul")).unwrap(),
        );
        DataFrame::new(
            2,
            vec![
                Column::new("dt".into(), [20_456i32, 20_457])
                    .cast(&DataType::Date)
                    .unwrap(),
                Column::new("code".into(), ["A", "B"]),
                Column::new("name".into(), ["'); DROP TABLE x; --", "🚀 캠페인"]),
                Column::new("amount_micros".into(), [Some(1_990_000i64), None]),
                Column::new("n".into(), [7u32, 8]),
                Column::new("share".into(), [Some(0.25f64), None]),
                Column::new("at".into(), [1_700_000_000_123i64, 0])
                    .cast(&ms)
                    .unwrap(),
                Column::new("local_at".into(), [1_700_000_000_123_456i64, -1])
                    .cast(&seoul)
                    .unwrap(),
                Column::new("wait".into(), [1_500i64, 0])
                    .cast(&DataType::Duration(TimeUnit::Milliseconds))
                    .unwrap(),
                Column::new("flag".into(), [true, false]),
                Column::new("small".into(), [-3i8, 127]),
                Column::new("weight".into(), [Some(1.5f32), None]),
                Column::new("big".into(), [u64::MAX, 0]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn tiny_frame_fits_its_schema() {
        tiny_schema().validate(&tiny_frame(), "test").unwrap();
    }
}
